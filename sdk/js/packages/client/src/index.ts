// @tailored/client: consent, visitor forwarding or server-to-server calls, the personalized page
// and its decisions, and tracker.js's event batching, over Tailored's committed GraphQL
// operations. No runtime dependencies; ES modules with type declarations.

export * from "./client.js";
export * from "./consent.js";
export * from "./errors.js";
export * from "./tracker.js";
export { OPERATIONS, post, type Answer, type Decision, type OperationId, type TransportOptions } from "./transport.js";
