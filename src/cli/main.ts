#!/usr/bin/env node
// The edge-page-cache command: argv + env -> options -> run. Bad input exits 2 with a message naming the
// flag; nothing starts half-configured.
import { ConfigError } from '../core/errors';
import { benchCommand } from './bench';
import { nginxConf, purgeCommand, warmCommand } from './commands';
import { explainCommand } from './explain';
import { serveHelp } from './flags';
import { reloadCommand } from './reload-command';
import { serveCommand } from './serve';

const USAGE = `usage: edge-page-cache <command> [flags]

commands:
  serve        run the edge server (edge-page-cache serve --help for its flags)
  reload       reload a running edge through its admin port: reload --admin URL [--token T] (or send SIGHUP)
  purge        purge URL... [--tag TAG...] [--prefix URL...] [--site HOST...] [--all] [--soft] [--rewarm --edge URL]
               through --admin URL --admin-token T, or --memcached host:port,...
  explain      explain URL... [--admin URL | --memcached host:port,...] [--fetch] [--json] [--method M] [--header 'N: v']:
               key, node, what L1 and memcached hold, and with --fetch every reason the origin's answer is not stored
  warm         warm --sitemap URL [--edge http://127.0.0.1:8080] [--concurrency 8]
  nginx-conf   print an nginx config serving the same cache [--memcached ...] [--fallback URL] [--listen 80]
  bench        bench --url URL [--compare URL...] [--urls-file FILE] [--duration 10] [--connections 50]
               [--header 'Name: value'...] [--json FILE] [--html FILE]
`;

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve': {
        if (rest.includes('--help') || rest.includes('-h')) {
          process.stdout.write(serveHelp());
          return 0;
        }
        await serveCommand(rest, env);
        return -1; // keep running
      }
      case 'reload':
        process.stdout.write(`${await reloadCommand(rest, env)}\n`);
        return 0;
      case 'purge':
        process.stdout.write(`${await purgeCommand(rest, env)}\n`);
        return 0;
      case 'explain':
        process.stdout.write(`${await explainCommand(rest, env)}\n`);
        return 0;
      case 'warm':
        process.stdout.write(`${await warmCommand(rest)}\n`);
        return 0;
      case 'nginx-conf':
        process.stdout.write(nginxConf(rest, env));
        return 0;
      case 'bench':
        process.stdout.write(`${await benchCommand(rest)}\n`);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`edge-page-cache: unknown command '${command}'\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`edge-page-cache ${command ?? ''}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`edge-page-cache ${command ?? ''}: ${(err as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2), process.env).then(
    (code) => {
      if (code >= 0) process.exit(code);
    },
    (err: unknown) => {
      process.stderr.write(`edge-page-cache: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
