/** Conditional inserts: a row written only if a condition holds when its statement runs. */
import { getTableColumns, param, type SQL, sql } from "drizzle-orm";
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import type { Db } from "./client.ts";

/**
 * INSERT ... SELECT of one row WHERE `condition`. drizzle's INSERT ... SELECT names every
 * column, in the table's order; a column the row leaves out is NULL (an autoincrement id then
 * takes its next value). Values go through their columns' encoders, as in a plain insert.
 */
export function insertWhere<T extends SQLiteTable>(
  db: Db,
  table: T,
  row: T["$inferInsert"],
  condition: SQL,
) {
  const values = Object.entries(getTableColumns(table)).map(([key, column]) =>
    key in row ? sql`${param(row[key as keyof typeof row], column)}` : sql`NULL`,
  );
  return db.insert(table).select(sql`SELECT ${sql.join(values, sql`, `)} WHERE ${condition}`);
}
