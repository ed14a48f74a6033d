import { describe, expect, test } from "bun:test";
import { cifsShare, maskedConfig, parseMirrorConfig } from "../lib/mirror/config.ts";
import { blaine } from "./helpers/cli.ts";
import { clockNow } from "../lib/clock.ts";
import { parseSnapshotName, planRotation, snapshotName } from "../lib/mirror/rotation.ts";

// mnemosyne's README examples, byte for byte (tabs and all).
const MNEMOSYNE_CIFS = `{
    "remote": {
\t"type": "cifs",
\t"volume": "\\\\\\\\synologic.local\\\\volumename",
\t"username": "user123",
\t"password": "PASSWORD-GOES-HERE"
    },
    "store": {
\t"name": "backup.btrfs",
\t"size": 2200,
\t"keyfile": "/usr/local/etc/mnemosyne/key"
    },
    "strategy": {
\t"stages": 8,
\t"rotate": 168
    },
    "local": {
\t"directories": [
\t    {
\t\t"key": "etc",
\t\t"directory": "/etc"
\t    },
\t    {
\t\t"key": "home",
\t\t"directory": "/home"
\t    }
\t]
    }
}
`;

const MNEMOSYNE_ISCSI = `{
    "remote": {
\t"type": "block",
\t"device": "UUID=441c6328-515d-45c7-84d9-bffb3097fbac"
    },
    "store": {
\t"name": "backup.btrfs",
\t"size": 2200,
\t"keyfile": "/usr/local/etc/mnemosyne/key"
    },
    "strategy": {
\t"stages": 8,
\t"rotate": 168
    },
    "local": {
\t"directories": [
\t    {
\t\t"key": "etc",
\t\t"directory": "/etc"
\t    },
\t    {
\t\t"key": "home",
\t\t"directory": "/home"
\t    }
\t]
    }
}
`;

const FILE = "/etc/mnemosyne/config.json";

function withChange(text: string, change: (json: any) => void): string {
  const json = JSON.parse(text);
  change(json);
  return JSON.stringify(json);
}

describe("mirror configuration (mnemosyne's JSON)", () => {
  test("mnemosyne's README CIFS example parses as it is", () => {
    const config = parseMirrorConfig(MNEMOSYNE_CIFS, FILE);
    expect(config.remote).toEqual({ type: "cifs", volume: "\\\\synologic.local\\volumename", username: "user123", password: "PASSWORD-GOES-HERE" });
    expect(cifsShare((config.remote as { volume: string }).volume)).toBe("//synologic.local/volumename");
    expect(config.store).toEqual({ name: "backup.btrfs", sizeBytes: 2200 * 1024 ** 3, keyfile: "/usr/local/etc/mnemosyne/key", encryption: "luks" });
    expect(config.strategy).toEqual({ stages: 8, rotateHours: 168 });
    expect(config.local).toEqual({ directories: [{ key: "etc", directory: "/etc" }, { key: "home", directory: "/home" }], exclude: [] });
  });

  test("mnemosyne's README iSCSI example parses as it is (and remote.block is its other spelling)", () => {
    const config = parseMirrorConfig(MNEMOSYNE_ISCSI, FILE);
    expect(config.remote).toEqual({ type: "block", device: "UUID=441c6328-515d-45c7-84d9-bffb3097fbac" });
    const blockSpelling = withChange(MNEMOSYNE_ISCSI, (json) => {
      json.remote = { type: "block", block: "LABEL=nas" };
    });
    expect(parseMirrorConfig(blockSpelling, FILE).remote).toEqual({ type: "block", device: "LABEL=nas" });
  });

  test("mnemosyne's config-template.json parses as it is", () => {
    const template = `{\n    "remote": {\n\t"type": "cifs",\n\t"volume": "\\\\\\\\nas\\\\volume",\n\t"username": "fred",\n\t"password": "alskdjaslkdjasld"\n    },\n    "store": {\n\t"name": "thing.btrfs",\n\t"size": 10,\n\t"keyfile": "/usr/local/backup/key"\n    },\n    "strategy": {\n\t"stages": 15,\n\t"rotate": 72\n    },\n    "local": {\n\t"directories": [\n\t    {\n\t\t"key": "etc",\n\t\t"directory": "/etc"\n\t    }\n\t]\n    }\n}\n`;
    const config = parseMirrorConfig(template, FILE);
    expect(cifsShare((config.remote as { volume: string }).volume)).toBe("//nas/volume");
    expect(config.store.sizeBytes).toBe(10 * 1024 ** 3);
    expect(config.strategy).toEqual({ stages: 15, rotateHours: 72 });
  });

  test("Blaine's optional keys: encryption, exclude, remote options, a SIZE", () => {
    const text = withChange(MNEMOSYNE_ISCSI, (json) => {
      json.store.encryption = "gocryptfs";
      json.store.size = "2T";
      json.store.keyfile = "keys/mirror.key";
      json.local.exclude = ["*.tmp", "/cache/"];
      json.remote.options = "noatime";
      json.strategy.rotate = 0.5;
    });
    const config = parseMirrorConfig(text, FILE);
    expect(config.store).toEqual({ name: "backup.btrfs", sizeBytes: 2 * 1024 ** 4, keyfile: "/etc/mnemosyne/keys/mirror.key", encryption: "gocryptfs" });
    expect(config.local.exclude).toEqual(["*.tmp", "/cache/"]);
    expect(config.remote.options).toBe("noatime");
    expect(config.strategy.rotateHours).toBe(0.5);
  });

  test.each([
    ["strategy.rotate: expected hours as a number", (json: any) => (json.strategy.rotate = "weekly")],
    ["strategy.stages: expected the number of snapshots kept", (json: any) => (json.strategy.stages = 2.5)],
    ["strategy.stages: missing", (json: any) => delete json.strategy.stages],
    ["store.colour: unknown key", (json: any) => (json.store.colour = "blue")],
    ["local.directories[1].key: \"home\" is used twice", (json: any) => (json.local.directories[1].key = "home") && (json.local.directories[0].key = "home")],
    ["local.directories[0].key: \"../x\" must be", (json: any) => (json.local.directories[0].key = "../x")],
    ["local.directories[1].directory: missing", (json: any) => delete json.local.directories[1].directory],
    ["remote.type: expected \"cifs\" or \"block\"", (json: any) => (json.remote.type = "nfs")],
    ["remote.password: not used by a block remote", (json: any) => (json.remote.password = "x")],
    ["store.encryption: expected \"luks\" or \"gocryptfs\"", (json: any) => (json.store.encryption = "rot13")],
    ["store.size: \"lots\" is not a size", (json: any) => (json.store.size = "lots")],
    ["store.name: expected a file name", (json: any) => (json.store.name = "../x.img")],
    ["local.exclude: expected a list of rsync patterns", (json: any) => (json.local.exclude = "*.tmp")],
    ["local: missing", (json: any) => delete json.local],
    ["extra: unknown key", (json: any) => (json.extra = 1)],
  ])("bad configuration names the key: %s", (message, change) => {
    expect(() => parseMirrorConfig(withChange(MNEMOSYNE_ISCSI, change), FILE)).toThrow(`${FILE}: ${message}`);
  });

  test("not JSON is an error naming the file", () => {
    expect(() => parseMirrorConfig("{", FILE)).toThrow(`${FILE}: not valid JSON`);
    expect(() => parseMirrorConfig("[]", FILE)).toThrow(`${FILE}: the top level: expected an object`);
  });

  test("the password is masked where the configuration is shown", () => {
    const shown = JSON.stringify(maskedConfig(parseMirrorConfig(MNEMOSYNE_CIFS, FILE)));
    expect(shown).not.toContain("PASSWORD-GOES-HERE");
    expect(shown).toContain("user123");
  });
});

describe("snapshot rotation", () => {
  const strategy = { stages: 3, rotateHours: 24 };

  test("names are KEY-YYYYMMDD-HHMMSS in UTC and read back, keys with dashes too", () => {
    const date = new Date("2026-03-04T05:06:07Z");
    expect(snapshotName("my-home", date)).toBe("my-home-20260304-050607");
    expect(parseSnapshotName("my-home-20260304-050607")).toEqual({ key: "my-home", name: "my-home-20260304-050607", date });
    expect(parseSnapshotName("home-20261304-050607")).toBeUndefined();
    expect(parseSnapshotName("home")).toBeUndefined();
  });

  const at = (iso: string) => new Date(iso);

  test("issue 17: the first backup takes no snapshot (nothing to keep); the period runs from the first completed backup", () => {
    expect(planRotation("home", [], at("2026-01-01T00:00:00Z"), {}, strategy)).toEqual({ drop: [], skipped: "first" });
    // The first backup completed at 00:00: the period starts there.
    const afterFirst = { completed: at("2026-01-01T06:00:00Z"), rotated: at("2026-01-01T00:00:00Z") };
    expect(planRotation("home", [], at("2026-01-01T23:59:59Z"), afterFirst, strategy)).toEqual({ drop: [], since: afterFirst.rotated });
    // Due: the snapshot holds the last completed backup's content and is named by its time.
    expect(planRotation("home", [], at("2026-01-02T00:00:00Z"), afterFirst, strategy)).toEqual({ take: "home-20260101-060000", drop: [], since: at("2026-01-02T00:00:00Z") });
  });

  test("issue 17: the snapshot is named by the completed backup it holds; the period runs from the last rotation", () => {
    const existing = ["home-20260101-060000", "etc-20250101-000000"];
    const state = { completed: at("2026-01-02T00:00:00Z"), rotated: at("2026-01-02T00:00:00Z") };
    expect(planRotation("home", existing, at("2026-01-02T23:00:00Z"), state, strategy)).toEqual({ drop: [], since: state.rotated });
    expect(planRotation("home", existing, at("2026-01-03T00:00:00Z"), state, strategy)).toEqual({ take: "home-20260102-000000", drop: [], since: at("2026-01-03T00:00:00Z") });
    // A store written before the state file: the period runs from the newest snapshot.
    expect(planRotation("home", existing, at("2026-01-02T06:00:00Z"), {}, strategy)).toEqual({ drop: [], skipped: "incomplete", since: at("2026-01-01T06:00:00Z") });
  });

  test("issue 17: a copy that did not complete since the last snapshot is not snapshotted (not a point in time); the next completed one is, at once", () => {
    const existing = ["home-20260101-000000"];
    const failed = { rotated: at("2026-01-02T00:00:00Z") };
    expect(planRotation("home", existing, at("2026-01-03T00:00:00Z"), failed, strategy)).toEqual({ drop: [], skipped: "incomplete", since: failed.rotated });
    const completed = { ...failed, completed: at("2026-01-03T01:00:00Z") };
    expect(planRotation("home", existing, at("2026-01-03T02:00:00Z"), completed, strategy)).toEqual({ take: "home-20260103-010000", drop: [], since: at("2026-01-03T02:00:00Z") });
    // Taken already (a run killed after its snapshot): not taken twice, the period restarts.
    expect(planRotation("home", ["home-20260103-010000"], at("2026-01-04T02:00:00Z"), { completed: at("2026-01-03T01:00:00Z"), rotated: at("2026-01-03T00:00:00Z") }, strategy)).toEqual({ drop: [], since: at("2026-01-04T02:00:00Z") });
  });

  test("the oldest beyond stages are dropped, counting the one taken now", () => {
    const existing = ["home-20260103-000000", "home-20260101-000000", "home-20260102-000000"];
    const state = { completed: at("2026-01-04T00:00:00Z"), rotated: at("2026-01-04T00:00:00Z") };
    expect(planRotation("home", existing, at("2026-01-05T00:00:00Z"), state, strategy)).toEqual({ take: "home-20260104-000000", drop: ["home-20260101-000000"], since: at("2026-01-05T00:00:00Z") });
    expect(planRotation("home", existing, at("2026-01-04T01:00:00Z"), state, { stages: 1, rotateHours: 24 })).toEqual({ drop: ["home-20260101-000000", "home-20260102-000000"], since: state.rotated });
  });

  test("BLAINE_NOW sets now; a bad one is an error naming it", () => {
    expect(clockNow({ BLAINE_NOW: "2026-02-03T04:05:06Z" }).toISOString()).toBe("2026-02-03T04:05:06.000Z");
    expect(() => clockNow({ BLAINE_NOW: "soon" })).toThrow("BLAINE_NOW");
  });
});

describe("blaine mirror's command line", () => {
  test("arguments a verb does not take are refused naming them, before the configuration is read", async () => {
    for (const args of [["backup", "extra"], ["--backup", "extra"], ["list", "extra"], ["mount", "/mnt/a", "/mnt/b"]]) {
      const refused = await blaine(["mirror", ...args, "-c", "/nonexistent/mirror.json"]);
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toContain(args.at(-1)!);
      expect(refused.stderr).not.toContain("mirror.json");
    }
  });
});
