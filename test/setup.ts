import { setDefaultTimeout } from "bun:test";

// Tests run the real CLI on real trees (and kill it, and re-run it): give them room.
setDefaultTimeout(120_000);
