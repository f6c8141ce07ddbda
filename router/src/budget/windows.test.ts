import { nextWindowStart, windowKey, type WindowKind } from "./windows";

const t = (iso: string) => Date.parse(iso);

describe("windowKey", () => {
  it.each<[WindowKind, string, string]>([
    ["hourly", "2026-11-30T14:59:59.999Z", "2026-11-30T14"],
    ["hourly", "2026-11-30T15:00:00.000Z", "2026-11-30T15"],
    ["daily", "2026-11-30T23:59:59.999Z", "2026-11-30"],
    ["daily", "2026-12-01T00:00:00.000Z", "2026-12-01"],
    ["monthly", "2026-12-31T23:59:59.999Z", "2026-12"],
    ["monthly", "2027-01-01T00:00:00.000Z", "2027-01"],
  ])("%s window of %s is %s", (kind, iso, key) => {
    expect(windowKey(kind, t(iso))).toBe(key);
  });

  it("uses UTC, not the local zone, for a time given with an offset", () => {
    expect(windowKey("daily", t("2026-11-30T23:30:00-05:00"))).toBe("2026-12-01");
  });

  it("is right for times in any order (the keys of the current hour are cached)", () => {
    const times = ["2026-11-30T14:10:00Z", "2026-11-30T15:00:00Z", "2026-11-30T14:59:59.999Z", "2027-01-01T00:00:00Z", "2026-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z"];
    for (const iso of [...times, ...times.reverse()]) {
      const whole = new Date(t(iso)).toISOString();
      expect([windowKey("hourly", t(iso)), windowKey("daily", t(iso)), windowKey("monthly", t(iso))]).toEqual([whole.slice(0, 13), whole.slice(0, 10), whole.slice(0, 7)]);
    }
  });
});

describe("nextWindowStart", () => {
  it.each<[WindowKind, string, string]>([
    ["hourly", "2026-11-30T23:10:00Z", "2026-12-01T00:00:00.000Z"],
    ["daily", "2026-02-28T10:00:00Z", "2026-03-01T00:00:00.000Z"],
    ["monthly", "2026-12-15T00:00:00Z", "2027-01-01T00:00:00.000Z"],
  ])("%s window after %s starts at %s", (kind, iso, next) => {
    expect(new Date(nextWindowStart(kind, t(iso))).toISOString()).toBe(next);
  });
});
