import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./lib/catalog/host-schema.ts",
  out: "./lib/catalog/migrations/host",
});
