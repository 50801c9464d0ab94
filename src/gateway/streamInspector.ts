import type { Endpoint } from '../metering/record';
import { parseEvent } from './sse';

/**
 * Looks at one SSE event of a provider's stream for the two things metering
 * needs: the usage report, and the generated text (kept in memory only, so
 * that output can be counted locally when a stream ends without usage, e.g.
 * when the client went away). Nothing here is logged or stored.
 */
export interface InspectedEvent {
  usage?: unknown;
  text?: string;
  /** The chat/completions usage-only chunk (choices: []) that the client may not have asked for. */
  usageOnly: boolean;
}

export function inspectEvent(endpoint: Endpoint, event: string): InspectedEvent {
  const { name, data } = parseEvent(event);
  if (data === null || data === '[DONE]') return { usageOnly: false };
  let json: any;
  try {
    json = JSON.parse(data);
  } catch {
    return { usageOnly: false };
  }
  if (endpoint === 'responses') {
    const type = json?.type ?? name;
    if (type === 'response.output_text.delta' && typeof json.delta === 'string') return { text: json.delta, usageOnly: false };
    if (type === 'response.completed' && json.response?.usage) return { usage: json.response.usage, usageOnly: false };
    return { usageOnly: false };
  }
  const choices: any[] = Array.isArray(json?.choices) ? json.choices : [];
  let text = '';
  for (const c of choices) {
    if (typeof c?.text === 'string') text += c.text;
    const d = c?.delta;
    if (d) {
      if (typeof d.content === 'string') text += d.content;
      if (typeof d.reasoning_content === 'string') text += d.reasoning_content;
      if (Array.isArray(d.tool_calls)) for (const t of d.tool_calls) if (typeof t?.function?.arguments === 'string') text += t.function.arguments;
    }
  }
  const usage = json?.usage ?? undefined;
  return { ...(usage ? { usage } : {}), ...(text ? { text } : {}), usageOnly: Boolean(usage) && choices.length === 0 };
}
