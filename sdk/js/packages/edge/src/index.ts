// @tailored/edge: Tailored's decision core for CDN workers and any JavaScript runtime. Pure
// functions, no runtime dependencies; the same answers as personalization/core/ on the cases of
// fixtures/spec/*.json.

export * from "./types.js";
export { clockMinutes, daypartAt, daypartStarts, localTime, DEFAULT_DAYPART_STARTS, MINUTES_PER_DAY } from "./clock.js";
export { compileRule, lookupField, pythonRegExp, RuleError, type CompiledRule, type CompileOptions, type Kind, type TraitKind } from "./rules.js";
export * from "./selection.js";
export * from "./bucketing.js";
export * from "./audience.js";
export * from "./request.js";
export * from "./edge.js";
export { sha256Hex } from "./sha256.js";
