// A parent-death guard for a server that `mixroute dev` (or the embedded
// PostgreSQL launcher) starts: node guard.mjs [--stop-signal SIG] [--grace-ms N] -- COMMAND [ARGS...]
//
// COMMAND runs as our child with our stdout and stderr. It is stopped (the stop
// signal, then SIGKILL after the grace period) when
//   - we get SIGTERM or SIGINT (the supervisor's ordinary stop), or
//   - our parent goes away, even by SIGKILL: our IPC channel closes, or, with
//     no channel, our parent pid changes (we were re-parented).
// A Go binary such as the Temporal CLI cannot notice that its parent died, and
// an orphaned dev server keeps its port and blocks the next start; this is
// portable where prctl(PR_SET_PDEATHSIG) is Linux-only.
// Plain JavaScript on purpose: it starts fast and needs no loader.
import { spawn } from 'node:child_process';
import { clearInterval, setInterval, setTimeout } from 'node:timers';

const argv = process.argv.slice(2);
let stopSignal = 'SIGTERM';
let graceMs = 10_000;
while (argv.length && argv[0] !== '--') {
  const flag = argv.shift();
  if (flag === '--stop-signal') stopSignal = argv.shift() ?? stopSignal;
  else if (flag === '--grace-ms') graceMs = Number(argv.shift() ?? graceMs);
  else {
    console.error(`guard: unknown option ${flag}`);
    process.exit(2);
  }
}
argv.shift();
const [command, ...args] = argv;
if (!command) {
  console.error('guard: no command given');
  process.exit(2);
}

const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  child.kill(stopSignal);
  setTimeout(() => child.kill('SIGKILL'), graceMs).unref();
};

child.once('error', (err) => {
  console.error(`guard: cannot start ${command}: ${err.message}`);
  process.exit(127);
});
child.once('spawn', () => {
  if (process.send) process.send({ pid: child.pid });
});
child.once('exit', (code, signal) => {
  clearInterval(watch);
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  if (process.connected) process.disconnect();
  // Die the way the child died, so the supervisor sees a SIGKILL as a SIGKILL.
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
const parent = process.ppid;
const watch = setInterval(() => {
  if (process.ppid !== parent) stop();
}, 500);
