// The serve command's flags, their EDGE_* environment twins, and the EdgeOptions key each one sets.
// Flags win over the environment, which wins over a --config file.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../core/errors';
import { closestName, plainObject } from '../core/options';
import { envName, SERVE_FLAGS } from '../core/option-table';
import type { EdgeOptions } from '../edge/options';

// The flags, their help and their defaults come from the one options table (src/core/option-table.ts).
export { SERVE_FLAGS, envName } from '../core/option-table';

const MULTI: ReadonlySet<string> = new Set(['origin', 'hosts', 'ignore-cookies', 'cache-statuses', 'site-token']);


/** argv (after 'serve') + env + optional config file -> EdgeOptions. Throws ConfigError naming the flag. */
export function serveOptionsFromArgv(argv: readonly string[], env: NodeJS.ProcessEnv): EdgeOptions {
  const options: Record<string, { type: 'string'; multiple?: boolean }> = { config: { type: 'string' } };
  for (const [flag] of SERVE_FLAGS) options[flag] = MULTI.has(flag) ? { type: 'string', multiple: true } : { type: 'string' };
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (err) {
    const msg = (err as Error).message;
    const m = /option '--?([^' ]+)/.exec(msg);
    if (m?.[1] !== undefined && /Unknown option/i.test(msg)) {
      const hint = closestName(m[1], SERVE_FLAGS.map(([f]) => f));
      throw new ConfigError(`unknown flag --${m[1]}${hint ? ` (did you mean --${hint}?)` : ''}; see edge-page-cache serve --help`);
    }
    if (/Unexpected argument/i.test(msg)) throw new ConfigError(`${msg.split('.')[0]}: serve takes only --flags`);
    throw new ConfigError(msg.replace(/^TypeError \[\w+\]: /, ''));
  }

  const out: Record<string, unknown> = {};
  const configPath = (values.config as string | undefined) ?? env.EDGE_CONFIG;
  if (configPath !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch (err) {
      throw new ConfigError(`--config ${configPath}: ${(err as Error).message}`);
    }
    Object.assign(out, plainObject(`--config ${configPath}`, parsed));
  }
  for (const [flag, key] of SERVE_FLAGS) {
    const fromEnv = env[envName(flag)];
    if (fromEnv !== undefined && fromEnv !== '') out[key] = fromEnv;
    const fromFlag = values[flag];
    if (fromFlag !== undefined) out[key] = fromFlag;
  }
  return out as EdgeOptions;
}

/** Re-labels a ConfigError about an option key with the flag the user typed. */
export function flagLabel(message: string): string {
  for (const [flag, key] of SERVE_FLAGS) {
    if (message.startsWith(`${key} `) || message.startsWith(`${key}:`) || message.startsWith(`${key}.`)) {
      return `--${flag} (${envName(flag)})${message.slice(key.length)}`;
    }
  }
  return message;
}

export function serveHelp(): string {
  const lines = SERVE_FLAGS.map(([flag, , help]) => `  --${flag.padEnd(24)} ${help}\n  ${''.padEnd(26)} env ${envName(flag)}`);
  return `usage: edge-page-cache serve --origin URL [flags]\n\n${lines.join('\n')}\n  --config FILE            JSON file of options (camelCase keys); flags and env win\n`;
}
