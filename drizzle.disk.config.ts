import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./lib/archive/catalog/disk-schema.ts",
  out: "./lib/archive/catalog/migrations/disk",
});
