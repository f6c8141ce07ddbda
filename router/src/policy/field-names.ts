// How servers read the field names of an agent's JSON: the router judges a field by the name an
// upstream will take it for, not by its exact spelling.

/** A field name as the OpenAI APIs spell theirs: lower-case ASCII letters, digits and `_`. */
export const PLAIN_KEY = /^[a-z0-9_]*$/;

/**
 * A key as servers that match field names without case read it: upper-cased then lower-cased, which
 * also folds the Unicode letters Go's encoding/json equates with ASCII ones (`ſ` = s, Kelvin `K` = k;
 * Go `bytes.EqualFold`, used by encoding/json for field names). Plain lower-case ASCII keys (nearly
 * all) are returned as they are, without allocating.
 */
export function foldKey(key: string): string {
  return PLAIN_KEY.test(key) ? key : key.toUpperCase().toLowerCase();
}
