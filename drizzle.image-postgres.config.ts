import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./lib/image/catalog/schema-postgres.ts",
  out: "./lib/image/migrations/postgres",
});
