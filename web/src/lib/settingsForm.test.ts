import { describe, expect, it } from "vitest";
import type { SettingMeta } from "@/api/settings";
import { CLEAR, RESET, buildPatch, describeValue, draftsFor, fromDraft, groupKeys, isChanged, toDraft } from "./settingsForm";

const meta = (type: SettingMeta["type"], extra: Partial<SettingMeta> = {}): SettingMeta => ({
  type,
  group: "G",
  label: "L",
  description: "",
  secret: type === "secret",
  source: "file",
  file_value: null,
  ...extra,
});

const META: Record<string, SettingMeta> = {
  "gateway.rate_limit_burst": meta("int", { group: "Public API", min: 1, max: 1000, unit: "requests" }),
  "gateway.rate_limit_per_second": meta("float", { group: "Public API", min: 0.1 }),
  "scheduler.smtp_starttls": meta("bool", { group: "Notifications" }),
  "scheduler.smtp_to": meta("string_list", { group: "Notifications" }),
  "scheduler.smtp_host": meta("string", { group: "Notifications" }),
  "scheduler.discord_webhook_url": meta("secret", { group: "Notifications" }),
  "admin.session_hours": meta("float", { group: "Admin sessions" }),
};
const SETTINGS = {
  "gateway.rate_limit_burst": 200,
  "gateway.rate_limit_per_second": 100,
  "scheduler.smtp_starttls": true,
  "scheduler.smtp_to": ["ops@example.com", "dev@example.com"],
  "scheduler.smtp_host": "",
  "scheduler.discord_webhook_url": { set: true },
  "admin.session_hours": 12,
};

describe("settings drafts", () => {
  it("shows lists as comma-separated text and secrets as an empty field", () => {
    const draft = draftsFor(SETTINGS, META);
    expect(draft["scheduler.smtp_to"]).toBe("ops@example.com, dev@example.com");
    expect(draft["scheduler.discord_webhook_url"]).toBe("");
    expect(draft["gateway.rate_limit_burst"]).toBe("200");
    expect(toDraft(true, META["scheduler.smtp_starttls"])).toBe(true);
    expect(Object.keys(draft).every((k) => !isChanged(SETTINGS[k as keyof typeof SETTINGS], META[k], draft[k]))).toBe(true);
  });

  it("converts edited fields back to the setting's type", () => {
    expect(fromDraft(200, "250", META["gateway.rate_limit_burst"])).toBe(250);
    expect(fromDraft(100, "0.5", META["gateway.rate_limit_per_second"])).toBe(0.5);
    expect(fromDraft([], "a@x.io,\n b@x.io , ", META["scheduler.smtp_to"])).toEqual(["a@x.io", "b@x.io"]);
    expect(fromDraft(true, false, META["scheduler.smtp_starttls"])).toBe(false);
    expect(fromDraft({ set: true }, "https://hook/1/t", META["scheduler.discord_webhook_url"])).toBe("https://hook/1/t");
    expect(fromDraft({ set: true }, CLEAR, META["scheduler.discord_webhook_url"])).toEqual({ set: false });
    expect(fromDraft(200, RESET, META["gateway.rate_limit_burst"])).toBeNull();
    // Without metadata the old generic rules still hold.
    expect(fromDraft({ a: 1 }, '{"a": 2}')).toEqual({ a: 2 });
    expect(fromDraft(null, "")).toBeNull();
  });

  it("refuses what the server would refuse, before sending", () => {
    const burst = META["gateway.rate_limit_burst"];
    expect(() => fromDraft(200, "", burst)).toThrow("must be a number");
    expect(() => fromDraft(200, "2.5", burst)).toThrow("must be a whole number");
    expect(() => fromDraft(200, "0", burst)).toThrow("must be at least 1");
    expect(() => fromDraft(200, "1001", burst)).toThrow("must be at most 1000");
    expect(() => fromDraft({ a: 1 }, "{")).toThrow("must be valid JSON");
  });

  it("builds a patch of the changed fields only, with errors by key", () => {
    const draft = {
      ...draftsFor(SETTINGS, META),
      "gateway.rate_limit_burst": "5",
      "admin.session_hours": RESET,
      "scheduler.discord_webhook_url": "",
    };
    expect(buildPatch(SETTINGS, META, draft)).toEqual({
      patch: { "gateway.rate_limit_burst": 5, "admin.session_hours": null },
      errors: {},
    });
    const bad = buildPatch(SETTINGS, META, { ...draft, "gateway.rate_limit_per_second": "fast" });
    expect(bad.errors).toEqual({ "gateway.rate_limit_per_second": "must be a number" });
  });

  it("groups keys in the server's order and describes values", () => {
    expect(groupKeys(META).map(([g, keys]) => [g, keys.length])).toEqual([
      ["Public API", 2],
      ["Notifications", 4],
      ["Admin sessions", 1],
    ]);
    expect(describeValue(200, META["gateway.rate_limit_burst"])).toBe("200 requests");
    expect(describeValue({ set: false })).toBe("not set");
    expect(describeValue([])).toBe("none");
    expect(describeValue("")).toBe("empty");
  });
});
