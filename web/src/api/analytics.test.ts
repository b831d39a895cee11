import { describe, expect, it } from "vitest";
import { connectionUri, parseTableList, tenantRoleNameProblem, toggleTable } from "./analytics";

describe("never-exposable table lists", () => {
  it("parses names typed with commas, spaces and new lines", () => {
    expect(parseTableList(" vf_credentials,event_write_tokens\npublic.vf_credentials  ")).toEqual([
      "event_write_tokens",
      "vf_credentials",
    ]);
    expect(parseTableList(" , \n")).toEqual([]);
  });

  it("adds and removes one table, keeping the list sorted and unique", () => {
    expect(toggleTable(["b", "d"], "a", true)).toEqual(["a", "b", "d"]);
    expect(toggleTable(["a", "b"], "a", true)).toEqual(["a", "b"]);
    expect(toggleTable(["a", "b"], "a", false)).toEqual(["b"]);
  });
});

describe("tenant role names", () => {
  it("follows the server's rule", () => {
    expect(tenantRoleNameProblem("acme")).toBeNull();
    expect(tenantRoleNameProblem("acme_2")).toBeNull();
    expect(tenantRoleNameProblem("a".repeat(35))).toBeNull();
    expect(tenantRoleNameProblem("")).toMatch(/required/);
    expect(tenantRoleNameProblem("a".repeat(36))).toMatch(/35/);
    for (const bad of ["Acme", "a-b", "1acme", "_acme", 'a"b', "a b"]) {
      expect(tenantRoleNameProblem(bad)).not.toBeNull();
    }
  });
});

describe("connection strings", () => {
  const c = { host: "10.101.0.1", port: 5432, database: "proj_abc", user: "proj_abc_analytics_acme", sslmode: "require" };
  it("leaves the password out unless given, and encodes it", () => {
    expect(connectionUri(c)).toBe("postgresql://proj_abc_analytics_acme@10.101.0.1:5432/proj_abc?sslmode=require");
    expect(connectionUri(c, "a/b+c")).toBe(
      "postgresql://proj_abc_analytics_acme:a%2Fb%2Bc@10.101.0.1:5432/proj_abc?sslmode=require",
    );
  });
});
