import type { Command } from 'commander';


import { UsageError, print, withStaff, defined, staffCommand } from './shared';

/** The price options of `models add` and `models price` (USD per million tokens). */
function priceOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--input-per-mtok <amount>', 'USD per million input tokens')
    .requiredOption('--output-per-mtok <amount>', 'USD per million output tokens')
    .option('--cached-input-per-mtok <amount>', 'USD per million cached input tokens')
    .option('--cache-write-per-mtok <amount>', 'USD per million five-minute prompt-cache write tokens (default: the input price)')
    .option('--cache-write-1h-per-mtok <amount>', 'USD per million one-hour prompt-cache write tokens (default: the input price)')
    .option('--effective-from <iso>', 'when the price takes effect (default now)');
}

/** Those options' values, as the staff operations take them. */
function priceFields(o: Record<string, string | undefined>) {
  return {
    inputPerMtok: o.inputPerMtok,
    outputPerMtok: o.outputPerMtok,
    cachedInputPerMtok: o.cachedInputPerMtok,
    cacheWritePerMtok: o.cacheWritePerMtok,
    cacheWrite1hPerMtok: o.cacheWrite1hPerMtok,
    effectiveFrom: o.effectiveFrom,
  };
}

/** Upstream providers, models and their prices. */
export function registerRouting(program: Command): void {
  const providers = program.command('providers').description('upstream model providers');
  staffCommand(providers, 'add', 'add a provider')
    .requiredOption('--name <name>', 'short name, e.g. openai')
    .requiredOption('--base-url <url>', 'API base URL, e.g. https://api.openai.com/v1')
    .option('--api-key-env <var>', 'the PROVIDER_<NAME>_API_KEY variable holding its API key (default: from --name)')
    .option('--kind <kind>', 'openai | anthropic', 'openai')
    .action(async (o) =>
      print(await withStaff((ops) => ops.addProvider(defined({ name: o.name, baseUrl: o.baseUrl, apiKeyEnv: o.apiKeyEnv, kind: o.kind }))), !!o.json),
    );
  staffCommand(providers, 'list', 'list providers')
    .option('--limit <n>', 'page size', '100')
    .option('--after <key>', 'the last name of the previous page')
    .action(async (o) => print(await withStaff((ops) => ops.listProviders(defined({ limit: o.limit, after: o.after }))), !!o.json));

  const models = program.command('models').description('models and their prices');
  priceOptions(
    staffCommand(models, 'add', 'add a model with its price, or a new price version (USD per million tokens)')
      .requiredOption('--name <public>', 'public model name clients send')
      .requiredOption('--provider <name>', 'provider name')
      .requiredOption('--upstream-model <model>', "the provider's model name"),
  ).action(async (o) =>
    print(
      await withStaff((ops) =>
        ops.addModel(
          defined({
            name: o.name,
            provider: o.provider,
            upstreamModel: o.upstreamModel,
            ...priceFields(o),
          }),
        ),
      ),
      !!o.json,
    ),
  );
  priceOptions(
    staffCommand(models, 'price', 'add a price version of an existing model (USD per million tokens); its route stays').requiredOption('--name <public>', 'public model name'),
  ).action(async (o) =>
    print(
      await withStaff((ops) =>
        ops.addPrice(
          defined({
            name: o.name,
            ...priceFields(o),
          }),
        ),
      ),
      !!o.json,
    ),
  );
  staffCommand(models, 'fallbacks', "set a model's ordered fallback routes (replaces the list; none clears it)")
    .requiredOption('--name <public>', 'public model name')
    .option('--route <provider:upstream-model>', 'a fallback route; repeat in order', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .action(async (o) => {
      const routes = (o.route as string[]).map((r) => {
        const i = r.indexOf(':');
        if (i <= 0 || i === r.length - 1) throw new UsageError(`--route ${r}: expected provider:upstream-model`);
        return { provider: r.slice(0, i), upstreamModel: r.slice(i + 1) };
      });
      print(await withStaff((ops) => ops.setModelFallbacks({ name: o.name, routes })), !!o.json);
    });
  staffCommand(models, 'list', 'list models with the price in force')
    .option('--limit <n>', 'page size', '100')
    .option('--after <key>', 'the last name of the previous page')
    .action(async (o) => print(await withStaff((ops) => ops.listModels(defined({ limit: o.limit, after: o.after }))), !!o.json));
}
