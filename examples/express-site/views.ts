// A tiny HTML layout for the example site. Values are escaped; real sites would use their template engine.
const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** Items are trusted HTML fragments; the title is escaped. */
export function renderPage(title: string, items: readonly string[]): string {
  const list = items.map((i) => `<li>${i}</li>`).join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
    `<body><h1>${escapeHtml(title)}</h1><ul>${list}</ul><footer>rendered at ${new Date().toISOString()}</footer></body></html>`;
}
