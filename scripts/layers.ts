/**
 * The layer check: `npm run lint:layers`, also run by `npm test` (scripts/test.sh).
 *
 * dependency-cruiser applies the rules of .dependency-cruiser.cjs. On top of them this
 * script checks "no cycles between top-level folders" over the same graph, because
 * dependency-cruiser's own folder-scoped rules cannot be baselined (--ignore-known
 * leaves folder violations alone) and count src/ as one folder holding all of src.
 *
 * Known violations (.dependency-cruiser-known-violations.json) are skipped: only a new
 * violation fails. `--update-baseline` rewrites that file after violations were fixed;
 * it refuses to add entries, so the list only shrinks.
 *
 *   node --import tsx scripts/layers.ts [--update-baseline]
 */
import fs from 'node:fs';
import path from 'node:path';
import { cruise, type ICruiseOptions, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';

export const ROOTS = ['src', 'activities', 'workflows', 'bin'];
export const CONFIG_FILE = '.dependency-cruiser.cjs';
export const BASELINE_FILE = '.dependency-cruiser-known-violations.json';

export const FOLDER_CYCLE_RULE = {
  name: 'no-cycles-between-folders',
  severity: 'error' as const,
  comment:
    'Top-level folders depend on each other in one direction (interfaces -> services -> data access and rules). ' +
    'Two folders that reach each other are one tangled module: move the shared part into the lower folder, or ' +
    'pass it in from the caller.',
};

/**
 * The node of the folder graph a module belongs to: src/<folder>, activities, workflows,
 * migrations, bin. A file directly in src/ (config, errors, clock, cli, ...) is a node
 * of its own rather than part of a folder "src" that would contain everything.
 * workflows/messages.ts is a node of its own too: it is the contract services,
 * activities and workflows all import, not workflow code. npm and core modules: null.
 */
export function folderOf(source: string): string | null {
  if (/(^|\/)node_modules\//.test(source) || !source.includes('/')) return null;
  if (source === 'workflows/messages.ts') return source;
  const parts = source.split('/');
  if (parts[0] === 'src') return parts.length > 2 ? `src/${parts[1]}` : source;
  if (parts[0] === '..' || parts[0] === '.') return null;
  return parts[0]!;
}

interface FolderEdge {
  from: string;
  to: string;
  /** One module-level dependency that makes the edge, for the message. */
  via: string;
}

export interface FolderCycle {
  from: string;
  to: string;
  /** The way back from `to` to `from`, folder by folder. */
  back: string[];
  via: string;
}

/** Every folder edge that lies on a cycle, with the shortest way back. */
export function folderCycles(result: ICruiseResult): FolderCycle[] {
  const edges = new Map<string, FolderEdge>();
  for (const m of result.modules) {
    const from = folderOf(m.source);
    if (!from) continue;
    for (const d of m.dependencies) {
      const to = folderOf(d.resolved);
      if (!to || to === from) continue;
      const key = `${from}\n${to}`;
      if (!edges.has(key)) {
        const typeOnly = d.dependencyTypes.includes('type-only') ? ' (type-only)' : '';
        edges.set(key, { from, to, via: `${m.source} -> ${d.resolved}${typeOnly}` });
      }
    }
  }
  const next = new Map<string, string[]>();
  for (const e of edges.values()) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);

  const wayBack = (start: string, goal: string): string[] | null => {
    const prev = new Map<string, string>([[start, start]]);
    const queue = [start];
    while (queue.length) {
      const node = queue.shift()!;
      if (node === goal) {
        const route = [node];
        while (route[0] !== start) route.unshift(prev.get(route[0]!)!);
        return route;
      }
      for (const n of [...(next.get(node) ?? [])].sort()) {
        if (!prev.has(n)) {
          prev.set(n, node);
          queue.push(n);
        }
      }
    }
    return null;
  };

  const cycles: FolderCycle[] = [];
  for (const e of edges.values()) {
    const back = wayBack(e.to, e.from);
    if (back) cycles.push({ from: e.from, to: e.to, back, via: e.via });
  }
  return cycles.sort((a, b) => a.from.localeCompare(b.from) || a.to.localeCompare(b.to));
}

/** Baseline entries are dependency-cruiser's own format, folder cycles included. */
function cycleViolation(c: FolderCycle): IViolation {
  return {
    type: 'cycle',
    from: c.from,
    to: c.to,
    rule: { name: FOLDER_CYCLE_RULE.name, severity: FOLDER_CYCLE_RULE.severity },
    cycle: c.back.slice(1).map((name) => ({ name, dependencyTypes: [] })),
  } as IViolation;
}

/** Identity of a known violation; a folder cycle is known by its two folders, whatever the way back. */
function violationKey(v: IViolation): string {
  return `${v.rule.name}|${v.from}|${v.to}`;
}

export interface LayerCheck {
  /** Violations that are not in the baseline: the check fails when there are any. */
  newViolations: IViolation[];
  /** Everything found, known or not, in baseline format. */
  allViolations: IViolation[];
  knownCount: number;
  /** Baseline entries that no longer occur (fixed): --update-baseline drops them. */
  staleCount: number;
  /** Readable report of the new violations. */
  report: string;
}

export interface LayerCheckOptions {
  /** Directory the paths in the config are relative to (the repository root). */
  baseDir?: string;
  roots?: string[];
  configFile?: string;
  /** Known violations; omit for none. */
  baseline?: IViolation[];
}

export async function checkLayers(opts: LayerCheckOptions = {}): Promise<LayerCheck> {
  const baseDir = path.resolve(opts.baseDir ?? process.cwd());
  const baseline = opts.baseline ?? [];
  const configFile = path.resolve(opts.configFile ?? CONFIG_FILE);
  const cruiseOptions: ICruiseOptions = { ...(await extractDepcruiseOptions(configFile)), baseDir, validate: true };
  const tsConfig = extractTSConfig(path.resolve(path.dirname(configFile), 'tsconfig.json'));

  const { output } = await cruise(opts.roots ?? ROOTS, cruiseOptions, {}, { tsConfig });
  const result = output as ICruiseResult;

  const ruleViolations = (result.summary.violations ?? []).filter((v) => v.rule.severity !== 'ignore');
  const cycles = folderCycles(result);
  const allViolations = [...ruleViolations, ...cycles.map(cycleViolation)];

  const known = new Set(baseline.map(violationKey));
  const found = new Set(allViolations.map(violationKey));
  const newViolations = allViolations.filter((v) => !known.has(violationKey(v)));
  const newCycles = cycles.filter((c) => !known.has(violationKey(cycleViolation(c))));
  const newRuleViolations = ruleViolations.filter((v) => !known.has(violationKey(v)));

  const comments = new Map<string, string>(
    [...(cruiseOptions.ruleSet?.forbidden ?? []), FOLDER_CYCLE_RULE].map((r) => [r.name ?? '', r.comment ?? '']),
  );
  const lines: string[] = [];
  for (const v of newRuleViolations) {
    const how = v.type === 'cycle' ? (v.cycle ?? []).map((c) => c.name).join(' -> ') : `${v.from} -> ${v.to}`;
    lines.push(`  error ${v.rule.name}: ${how}`, `    ${comments.get(v.rule.name) ?? ''}`, '');
  }
  for (const c of newCycles) {
    lines.push(
      `  error ${FOLDER_CYCLE_RULE.name}: ${[c.from, ...c.back].join(' -> ')}`,
      `    ${c.from} -> ${c.to} because ${c.via}`,
      `    ${FOLDER_CYCLE_RULE.comment}`,
      '',
    );
  }

  return {
    newViolations,
    allViolations,
    knownCount: allViolations.length - newViolations.length,
    staleCount: baseline.filter((v) => !found.has(violationKey(v))).length,
    report: lines.join('\n'),
  };
}

export function readBaseline(file = BASELINE_FILE): IViolation[] {
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as IViolation[]) : [];
}

/** The baseline with only what still occurs, in a stable order for readable diffs. */
export function shrunkBaseline(check: LayerCheck, baseline: IViolation[]): IViolation[] {
  const known = new Set(baseline.map(violationKey));
  return check.allViolations
    .filter((v) => known.has(violationKey(v)))
    .sort((a, b) => violationKey(a).localeCompare(violationKey(b)));
}

async function main(): Promise<void> {
  const baseline = readBaseline();
  const check = await checkLayers({ baseline });
  if (process.argv.includes('--update-baseline')) {
    if (check.newViolations.length) {
      console.error(`[layers] not updating ${BASELINE_FILE}: it only shrinks, and these are new:\n\n${check.report}`);
      process.exit(1);
    }
    const shrunk = shrunkBaseline(check, baseline);
    fs.writeFileSync(BASELINE_FILE, `${JSON.stringify(shrunk, null, 2)}\n`);
    console.error(`[layers] ${BASELINE_FILE}: ${baseline.length} -> ${shrunk.length} known violations`);
    return;
  }
  const summary = `${check.knownCount} known violations skipped (${BASELINE_FILE})`;
  if (check.staleCount) {
    console.error(`[layers] ${check.staleCount} known violations are fixed: drop them with npm run lint:layers -- --update-baseline`);
  }
  if (check.newViolations.length) {
    console.error(`[layers] ${check.newViolations.length} new layer violations (docs/architecture.md "Layers"):\n\n${check.report}${summary}`);
    process.exit(1);
  }
  console.error(`[layers] ok; ${summary}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename ?? '')) {
  main().catch((err: unknown) => {
    console.error(`[layers] ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  });
}
