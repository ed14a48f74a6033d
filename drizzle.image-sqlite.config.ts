import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./lib/image/catalog/schema-sqlite.ts",
  out: "./lib/image/migrations/sqlite",
});
