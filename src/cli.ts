/**
 * `zproxy start | validate | --help | --version` (SPEC §2).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from './config/validate';
import { closestKey } from './config/checks';
import { defaultConfigPath, readConfigFile } from './config/load';
import { Server } from './server/server';

const USAGE = `Usage:
  zproxy start [--config FILE] [--upstream URL] [--host ADDRESS] [--port N] [--threads N] [--no-admin]
      Start the proxy. Without --config, the embedded default config/zproxy.json
      (a welcome response on / and the admin API on 127.0.0.1:9901).
      --upstream URL replaces the routes with one catch-all route to URL
      (http://, https://, h2c:// or h2://); without --config it listens on
      127.0.0.1 unless --host says otherwise, so a development backend is
      not exposed to the network by surprise. --no-admin turns the admin
      listener off.
      SIGTERM/SIGINT drain and exit 0; a second signal exits at once (1);
      SIGHUP reloads routes and middleware from the config file.
  zproxy validate FILE
      Exit 0 if FILE is a valid config; otherwise print one line per problem
      (naming its JSON path) and exit 1.
  zproxy --help | --version

Environment:
  ZPROXY_NO_NATIVE=1     run the pure TypeScript fallback instead of the addon
  ZPROXY_LOG_LEVEL=L     override log_level (trace, debug, info, warn, error, silent)
`;

interface StartFlags {
  config?: string;
  upstream?: string;
  host?: string;
  noAdmin?: boolean;
  port?: number;
  threads?: number;
}

const START_OPTIONS = ['--config', '--upstream', '--host', '--port', '--threads', '--no-admin', '--help'];

/** Thrown to print the usage and exit 0 (`--help` after a command). */
class HelpRequested extends Error {}

function parseStartFlags(args: string[]): StartFlags {
  const flags: StartFlags = {};
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    if (flag === '--help' || flag === '-h') throw new HelpRequested();
    if (flag === '--no-admin') {
      flags.noAdmin = true;
      continue;
    }
    if (!START_OPTIONS.includes(flag)) throw new UsageError(unknownOption(flag));
    const value = args[i + 1];
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    i++;
    if (flag === '--config') flags.config = value;
    else if (flag === '--upstream') flags.upstream = upstreamUrl(value);
    else if (flag === '--host') flags.host = value;
    else if (flag === '--port') flags.port = parseInteger(flag, value);
    else flags.threads = parseInteger(flag, value);
  }
  return flags;
}

function unknownOption(flag: string): string {
  const near = flag.startsWith('-') ? closestKey(flag.replace(/^-+/, ''), START_OPTIONS.map((o) => o.slice(2))) : undefined;
  return `unknown option ${flag}${near ? ` (did you mean --${near}?)` : ''}`;
}

/** `--upstream` checked as the user wrote it (a missing scheme is the usual slip), not as the route it becomes. */
function upstreamUrl(value: string): string {
  if (/^(https?|h2c?):\/\/[^/]/.test(value)) return value;
  const hint = /^[\w.-]+:\d+$|^\[[\da-f:]+\]:\d+$/i.test(value) ? ` (did you mean http://${value}?)` : '';
  throw new UsageError(`--upstream expects a URL like http://127.0.0.1:3000, got ${JSON.stringify(value)}${hint}`);
}

function parseInteger(flag: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} expects an integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

class UsageError extends Error {}

/** Reads the config file with the command-line overrides applied, validated. */
function configFor(flags: StartFlags) {
  const file = flags.config ?? defaultConfigPath();
  const config = readConfigFile(file);
  // A one-line --upstream proxy on the embedded config serves this machine only, unless --host says otherwise.
  const host = flags.host ?? (flags.upstream !== undefined && flags.config === undefined ? '127.0.0.1' : undefined);
  if (flags.port === undefined && flags.threads === undefined && flags.upstream === undefined && host === undefined && !flags.noAdmin) return { file, config };
  return {
    file,
    config: loadConfig(
      {
        ...config,
        ...(host !== undefined && { host }),
        ...(flags.port !== undefined && { port: flags.port }),
        ...(flags.threads !== undefined && { thread_count: flags.threads }),
        ...(flags.upstream !== undefined && { routes: [{ path: '/', upstream: flags.upstream }] }),
        ...(flags.noAdmin && { admin: null }),
      },
      { source: `${file} with the command-line options` },
    ),
  };
}

async function start(flags: StartFlags): Promise<void> {
  const { file, config } = configFor(flags);
  const server = Server.init(config);
  let signals = 0;
  const onStopSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      server.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    server.log.info({ signal }, 'stopping');
    void server.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', onStopSignal);
  process.on('SIGINT', onStopSignal);
  process.on('SIGHUP', () => {
    try {
      // Rejected asynchronously too (an unreadable ca_file, a server not running): logged, never an unhandled rejection.
      server.reload(configFor(flags).config).catch((err: Error) => server.log.error({ file, errors: [err.message] }, 'reload rejected: the running config is kept'));
    } catch (err) {
      const errors = err instanceof ConfigError ? err.errors : [String(err)];
      server.log.error({ file, errors }, 'reload rejected: the running config is kept');
    }
  });
  await server.start();
}

function validate(args: string[]): number {
  const [file, extra] = args;
  if (file === '--help' || file === '-h') throw new HelpRequested();
  if (!file) throw new UsageError('validate needs a FILE');
  if (file.startsWith('-')) throw new UsageError(`unknown option ${file} (validate takes a FILE)`);
  if (extra !== undefined) throw new UsageError(`validate takes one FILE, got also ${JSON.stringify(extra)}`);
  try {
    readConfigFile(file);
    process.stdout.write(`${file}: valid\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Each line names the file, as compilers do: `zproxy.json: routes[2].upstream: ...`.
    for (const line of err.errors) process.stderr.write(line.startsWith(`${file}: `) ? `${line}\n` : `${file}: ${line}\n`);
    return 1;
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(USAGE);
    } else if (command === '--version' || command === '-v') {
      process.stdout.write(`${version()}\n`);
    } else if (command === 'validate') {
      process.exitCode = validate(rest);
    } else if (command === 'start') {
      await start(parseStartFlags(rest));
    } else {
      throw new UsageError(`unknown command ${command}`);
    }
  } catch (err) {
    if (err instanceof HelpRequested) {
      process.stdout.write(USAGE);
    } else if (err instanceof UsageError) {
      process.stderr.write(`zproxy: ${err.message}\nRun \`zproxy --help\` for the usage.\n`);
      process.exitCode = 2;
    } else if (err instanceof ConfigError) {
      for (const line of err.errors) process.stderr.write(`${line}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`zproxy: ${(err as Error).message ?? err}\n`);
      process.exitCode = 1;
    }
  }
}
