/** A description of the machine a benchmark ran on: CPU, cores, memory, Node, kernel and the disk under the data dir. */
import { execFileSync } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, readFileSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { latencySummary, type LatencySummary } from './stats.js';

/** What the benchmark output and docs/performance.md report about the machine. */
export interface MachineInfo {
  cpuModel: string;
  cpuMHz: number | null;
  cores: number;
  memoryGiB: number;
  node: string;
  kernel: string;
  /** The file system under the benchmark data directory: device, type, size in GiB, rotational flag. */
  disk: { path: string; device: string; fsType: string; sizeGiB: number; rotational: boolean | null };
  loadAverage: string;
  /** The build measured: git commit and how many files differ from it (the tree moves while engineers work). */
  source: { commit: string; changedFiles: number };
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The mount (device, type) holding `path`: the longest mount point that prefixes it. */
function mountOf(path: string): { device: string; fsType: string } {
  const abs = resolve(path);
  let best = { point: '', device: 'unknown', fsType: 'unknown' };
  for (const line of readText('/proc/mounts').split('\n')) {
    const [device, point, fsType] = line.split(' ');
    if (device === undefined || point === undefined || fsType === undefined) continue;
    const prefix = point.endsWith('/') ? point : `${point}/`;
    if ((abs === point || abs.startsWith(prefix)) && point.length > best.point.length) best = { point, device, fsType };
  }
  return { device: best.device, fsType: best.fsType };
}

/** Whether the block device is rotational per /sys/block (virtual disks often claim 1). */
function rotational(device: string): boolean | null {
  const name = basename(device).replace(/p?\d+$/, '');
  const text = readText(`/sys/block/${name}/queue/rotational`).trim();
  return text === '' ? null : text === '1';
}

/** The git commit of `root` and how many files differ from it; "unknown" outside a repository. */
function sourceState(root: string): { commit: string; changedFiles: number } {
  try {
    const commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['-C', root, 'status', '--porcelain'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { commit, changedFiles: status.split('\n').filter((l) => l.trim() !== '').length };
  } catch {
    return { commit: 'unknown', changedFiles: 0 };
  }
}

/** Describes this machine; `dataDir` is where the benchmarks keep their stores, `root` the repository. */
export function machineInfo(dataDir: string, root: string): MachineInfo {
  const cpuinfo = readText('/proc/cpuinfo');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const mhz = /^cpu MHz\s*:\s*([\d.]+)$/m.exec(cpuinfo)?.[1];
  const mount = mountOf(dataDir);
  let sizeGiB = 0;
  try {
    const s = statfsSync(dataDir);
    sizeGiB = Math.round((s.blocks * s.bsize) / 2 ** 30);
  } catch {
    // unknown
  }
  return {
    cpuModel: model,
    cpuMHz: mhz === undefined ? null : Math.round(Number(mhz)),
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: release(),
    disk: { path: resolve(dataDir), device: mount.device, fsType: mount.fsType, sizeGiB, rotational: rotational(mount.device) },
    loadAverage: readText('/proc/loadavg').split(' ').slice(0, 3).join(' '),
    source: sourceState(root),
  };
}

/** The machine as a few human lines. */
export function formatMachine(m: MachineInfo): string {
  const rot = m.disk.rotational === null ? '' : m.disk.rotational ? ', reports rotational' : ', reports non-rotational';
  return [
    `CPU     ${m.cpuModel}${m.cpuMHz === null ? '' : ` @ ${m.cpuMHz} MHz`}, ${m.cores} cores`,
    `memory  ${m.memoryGiB} GiB`,
    `node    ${m.node} (Linux ${m.kernel})`,
    `disk    ${m.disk.device} ${m.disk.fsType} ${m.disk.sizeGiB} GiB${rot}; data in ${m.disk.path}`,
    `load    ${m.loadAverage} (1/5/15 min, before the run)`,
    `build   git ${m.source.commit}${m.source.changedFiles > 0 ? ` + ${m.source.changedFiles} changed files in the working tree` : ''}`,
  ].join('\n');
}

/**
 * The machine's fsync floor: `count` times, overwrite `bytes` at offset 0 of a file in `dir` and
 * fdatasync it (what one SQLite WAL commit with synchronous=FULL costs at least). Latencies in ms.
 */
export function measureFsync(dir: string, count = 200, bytes = 4096): LatencySummary {
  const path = join(dir, `fsync-probe-${process.pid}.bin`);
  const fd = openSync(path, 'w');
  const buf = Buffer.alloc(bytes, 7);
  const samples: number[] = [];
  try {
    writeSync(fd, buf, 0, bytes, 0);
    fdatasyncSync(fd);
    for (let i = 0; i < count; i++) {
      buf[0] = i & 0xff;
      const t = performance.now();
      writeSync(fd, buf, 0, bytes, 0);
      fdatasyncSync(fd);
      samples.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  return latencySummary(samples);
}

/** A reading of how busy the machine is: CPU pressure stall time (µs, PSI "some") and the load averages. */
export interface LoadReading {
  atMs: number;
  cpuSomeStallUs: number;
  loadAverage: string;
}

/** Reads /proc/pressure/cpu and /proc/loadavg now (stall NaN where PSI is unavailable). */
export function readLoad(): LoadReading {
  const psi = /^some .*total=(\d+)/m.exec(readText('/proc/pressure/cpu'))?.[1];
  return { atMs: performance.now(), cpuSomeStallUs: psi === undefined ? Number.NaN : Number(psi), loadAverage: readText('/proc/loadavg').split(' ').slice(0, 3).join(' ') };
}

/**
 * What other work did to a benchmark between two readings: the share of wall time in which at
 * least one runnable task waited for a CPU (PSI "some", 0–100 %), and the load averages.
 */
export function describeLoad(before: LoadReading, after: LoadReading): { cpuPressurePct: number; loadBefore: string; loadAfter: string } {
  const wallUs = (after.atMs - before.atMs) * 1000;
  return {
    cpuPressurePct: Math.round(((after.cpuSomeStallUs - before.cpuSomeStallUs) / wallUs) * 1000) / 10,
    loadBefore: before.loadAverage,
    loadAfter: after.loadAverage,
  };
}
