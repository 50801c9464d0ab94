import type { Connection } from '@temporalio/client';
// A CommonJS module whose namespaces Node's ESM loader cannot name-import.
import protos, { type temporal as TemporalProto } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES, type SearchAttributeKind } from './searchAttributes';

const { temporal } = protos;

const KIND_TO_PROTO: Record<SearchAttributeKind, TemporalProto.api.enums.v1.IndexedValueType> = {
  Keyword: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Text: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  Int: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
  Double: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  Bool: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  Datetime: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  KeywordList: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

/** The declared custom search attributes the namespace lacks (changes nothing). */
export async function missingSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const present = new Set(Object.keys(existing.customAttributes ?? {}));
  return SEARCH_ATTRIBUTES.filter((a) => !present.has(a.name)).map((a) => a.name);
}

/**
 * Registers the custom search attributes that the namespace lacks. Idempotent;
 * the dev server already has them from its start flags, so there it adds none.
 * Returns the names it added.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const names = await missingSearchAttributes(connection, namespace);
  const missing = SEARCH_ATTRIBUTES.filter((a) => names.includes(a.name));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((a) => [a.name, KIND_TO_PROTO[a.kind]])),
  });
  return missing.map((a) => a.name);
}
