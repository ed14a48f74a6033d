import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./lib/catalog/disk-schema.ts",
  out: "./lib/catalog/migrations/disk",
});
