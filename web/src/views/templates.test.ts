// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { parameterLabels } from "./templates";

describe("the template picker", () => {
  it("asks for the header's parameters, then the body's", () => {
    expect(parameterLabels({ param_counts: { header: 1, body: 2 } })).toEqual(["Header {{1}}", "Body {{1}}", "Body {{2}}"]);
    expect(parameterLabels({ param_counts: { header: 0, body: 0 } })).toEqual([]);
  });
});
