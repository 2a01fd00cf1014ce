// Deterministic experiment bucketing, the recipe of personalization/core/bucketing.py:
//   u = (first 8 bytes of SHA-256(UTF-8(seed + ":" + visitor)) as a big-endian uint64 >> 11) / 2**53
// Up to four independent draws per assignment (layer, traffic, holdout, arm), each with its own
// seed, so that changing one knob never reshuffles what another decided.

import { sha256Words } from "./sha256.js";

export const GLOBAL_HOLDOUT_SALT = "tailored-global-holdout";

/** A uniform, deterministic draw in [0, 1) for this seed and visitor. */
export function unitHash(seed: string, visitorId: string): number {
  const [high, low] = sha256Words(seed + ":" + visitorId);
  // The top 53 bits of the first 64: all 32 of `high`, then the top 21 of `low`. Exact in a double.
  return (high * 2 ** 21 + (low >>> 11)) / 2 ** 53;
}

/** Whether this visitor is in the site-wide holdout (no personalization at all). */
export function inGlobalHoldout(visitorId: string, share: number, salt = GLOBAL_HOLDOUT_SALT): boolean {
  if (!(share >= 0 && share <= 1)) throw new RangeError(`holdout share must be between 0 and 1, not ${share}`);
  return unitHash(salt, visitorId) < share;
}

export interface Arm {
  key: string;
  /** Relative; weights need not sum to 1. */
  weight?: number;
}

export interface ExperimentSpec {
  key: string;
  seed: string;
  /** The first arm is the control. */
  arms: Arm[];
  traffic?: number;
  holdout?: number;
  layer?: string | null;
  layer_range?: [number, number];
}

export interface Assignment {
  experiment: string;
  arm: string;
  in_holdout: boolean;
}

/** Upper bounds of each arm's range in [0, 1]; the last is exactly 1. */
export function cumulativeBounds(weights: number[]): number[] {
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  let running = 0;
  const bounds = weights.map((weight) => (running += weight) / total);
  bounds[bounds.length - 1] = 1;
  return bounds;
}

/** Throws RangeError naming the problem, as ExperimentSpec's validation does in Python. */
export function validateSpec(spec: ExperimentSpec): void {
  const keys = spec.arms.map((arm) => arm.key);
  const weights = spec.arms.map((arm) => arm.weight ?? 1);
  const [low, high] = spec.layer_range ?? [0, 1];
  const problem =
    !spec.arms.length ? "has no arms"
    : new Set(keys).size !== keys.length ? `has duplicate arm keys: ${keys.join(", ")}`
    : weights.some((w) => w < 0) || weights.reduce((a, b) => a + b, 0) <= 0 ? "weights must be >= 0 with a positive total"
    : !((spec.traffic ?? 1) >= 0 && (spec.traffic ?? 1) <= 1) ? "traffic must be in [0, 1]"
    : !((spec.holdout ?? 0) >= 0 && (spec.holdout ?? 0) < 1) ? "holdout must be in [0, 1)"
    : !(0 <= low && low <= high && high <= 1) ? "layer_range must satisfy 0 <= low <= high <= 1"
    : spec.layer == null && (low !== 0 || high !== 1) ? "a layer_range needs a layer name"
    : null;
  if (problem) throw new RangeError(`experiment ${JSON.stringify(spec.key)} ${problem}`);
}

/** The arm this visitor sees, or null outside the layer range or the traffic. */
export function assign(spec: ExperimentSpec, visitorId: string): Assignment | null {
  validateSpec(spec);
  if (spec.layer != null) {
    const [low, high] = spec.layer_range ?? [0, 1];
    const draw = unitHash("layer:" + spec.layer, visitorId);
    if (!(low <= draw && draw < high)) return null;
  }
  const traffic = spec.traffic ?? 1;
  if (traffic < 1 && unitHash(spec.seed + "|traffic", visitorId) >= traffic) return null;
  const holdout = spec.holdout ?? 0;
  if (holdout > 0 && unitHash(spec.seed + "|holdout", visitorId) < holdout) {
    return { experiment: spec.key, arm: spec.arms[0].key, in_holdout: true };
  }
  const bounds = cumulativeBounds(spec.arms.map((arm) => arm.weight ?? 1));
  const draw = unitHash(spec.seed, visitorId);
  // bisect_right: the first bound strictly above the draw (a zero-weight arm is skipped).
  let index = bounds.findIndex((bound) => bound > draw);
  if (index < 0) index = bounds.length - 1;
  return { experiment: spec.key, arm: spec.arms[index].key, in_holdout: false };
}

/** Disjoint, contiguous ranges of one layer's draw, in the given order from 0. */
export function allocateLayerRanges(shares: [string, number][]): Record<string, [number, number]> {
  const ranges: Record<string, [number, number]> = {};
  let low = 0;
  for (const [key, share] of shares) {
    if (key in ranges) throw new RangeError(`experiment ${JSON.stringify(key)} appears twice in the layer`);
    if (share < 0) throw new RangeError(`experiment ${JSON.stringify(key)} has a negative layer share`);
    const high = low + share;
    if (high > 1 + 1e-9) throw new RangeError("layer shares add up to more than 1");
    ranges[key] = [low, Math.min(high, 1)];
    low = high;
  }
  return ranges;
}
