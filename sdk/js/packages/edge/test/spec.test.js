// The language-neutral cases of fixtures/spec/ that tests/core/test_rules.py and
// tests/core/test_bucketing.py run against the Python core, run here against the edge core:
// a divergence fails `make test-js`.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { allocateLayerRanges, assign, compileRule, RuleError, unitHash } from "../dist/index.js";

const spec = (name) => JSON.parse(readFileSync(new URL(`../../../../../fixtures/spec/${name}`, import.meta.url), "utf8"));
const RULES = spec("rules.json");
const BUCKETING = spec("bucketing.json");

// The one skip rule: the edge has no profile store. It decides only for visitors without a
// profile (no personalization consent), so a case that gives the visitor profile data AND whose
// rule reads the profile is the origin's. Every other case (context-only rules, and profile rules
// over the empty profile) must give Python's answer.
function skipReason(testCase, rule) {
  const hasProfile = Object.keys(testCase.profile ?? {}).length > 0;
  return hasProfile && rule.readsProfile ? "the case gives the visitor a profile the rule reads; the edge knows only empty profiles" : null;
}

const skipped = [];
for (const testCase of RULES.cases) {
  const rule = compileRule(testCase.rule, { traits: RULES.traits });
  const reason = skipReason(testCase, rule);
  if (reason) {
    skipped.push(testCase.name);
    test(`rule: ${testCase.name}`, { skip: reason }, () => {});
    continue;
  }
  test(`rule: ${testCase.name}`, () => {
    assert.equal(rule.matches(testCase.context ?? {}), testCase.expect);
  });
}

test("the edge runs every rule case but those the skip rule names", () => {
  const run = RULES.cases.length - skipped.length;
  // A fixture that grew profile data everywhere would quietly empty this suite: keep it honest.
  assert.ok(run >= 50, `only ${run} rule cases run at the edge`);
  console.log(`# edge spec: ${run} of ${RULES.cases.length} rule cases run; skipped (profile data the rule reads): ${skipped.join("; ")}`);
});

for (const testCase of RULES.errors) {
  test(`invalid rule: ${testCase.name}`, () => {
    assert.throws(() => compileRule(testCase.rule, { traits: RULES.traits }), (error) => {
      assert.ok(error instanceof RuleError, `not a RuleError: ${error}`);
      assert.equal(error.path, testCase.path);
      assert.ok(error.message.startsWith(testCase.path + ": "), error.message);
      return true;
    });
  });
}

for (const testCase of BUCKETING.hashes) {
  test(`unit hash ${testCase.seed}:${testCase.visitor}`.slice(0, 60), () => {
    assert.ok(Math.abs(unitHash(testCase.seed, testCase.visitor) - testCase.unit_hash) <= 5e-13);
  });
}

for (const testCase of BUCKETING.assignments) {
  test(`assignment: ${testCase.name}`, () => {
    for (const [visitor, expected] of Object.entries(testCase.expect)) {
      const got = assign(testCase.spec, visitor);
      assert.deepEqual(got && { arm: got.arm, in_holdout: got.in_holdout }, expected, visitor);
      if (got) assert.equal(got.experiment, testCase.spec.key);
    }
  });
}

for (const testCase of BUCKETING.layer_ranges) {
  test(`layer ranges ${JSON.stringify(testCase.shares)}`, () => {
    const ranges = allocateLayerRanges(testCase.shares);
    assert.deepEqual(Object.keys(ranges), Object.keys(testCase.expect));
    for (const [key, [low, high]] of Object.entries(testCase.expect)) {
      assert.ok(Math.abs(ranges[key][0] - low) < 1e-12 && Math.abs(ranges[key][1] - high) < 1e-12, key);
    }
  });
}
