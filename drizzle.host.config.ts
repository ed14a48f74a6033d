import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./lib/archive/catalog/host-schema.ts",
  out: "./lib/archive/catalog/migrations/host",
});
