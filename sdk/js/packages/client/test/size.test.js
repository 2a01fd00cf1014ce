import assert from "node:assert/strict";
import { test } from "node:test";

import { packageSize } from "../../../scripts/size.mjs";

test("the client stays under 10 KiB gzipped", () => {
  const { gzip } = packageSize("client");
  assert.ok(gzip < 10 * 1024, `${gzip} bytes gzipped`);
});
