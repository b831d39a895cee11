import type { Transport } from "./http.js";

/** A value a filter compares with; sent as text and converted by AtlasHub to the column's type. */
export type FilterValue = string | number | boolean | bigint | Date;
export type Row = Record<string, unknown>;
export type Returning = "representation" | "minimal";

export interface ColumnInfo {
  name: string;
  type: string;
  nullable: boolean;
  primaryKey: boolean;
  hasDefault: boolean;
}

export interface TableInfo {
  name: string;
  kind: string;
  primaryKey: string[];
  columns: ColumnInfo[];
}

type Query = Array<[string, string]>;

function text(value: FilterValue): string {
  return value instanceof Date ? value.toISOString() : String(value);
}

/** One item of an `in.<col>=a,b,"c,d"` list: quoted when it holds a comma, quote or backslash, or is empty. */
export function inListItem(value: FilterValue): string {
  const raw = text(value);
  if (raw !== "" && !/[,"\\]/.test(raw)) return raw;
  return `"${raw.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Filters shared by select, update and delete: `<op>.<col>=<value>` pairs, ANDed by AtlasHub. */
abstract class Filtered<T> implements PromiseLike<T> {
  protected readonly params: Query = [];

  constructor(
    protected readonly transport: Transport,
    protected readonly table: string,
  ) {}

  /** `col = value` */
  eq(column: string, value: FilterValue): this {
    return this.filter("eq", column, text(value));
  }
  /** `col <> value` */
  neq(column: string, value: FilterValue): this {
    return this.filter("neq", column, text(value));
  }
  /** `col < value` */
  lt(column: string, value: FilterValue): this {
    return this.filter("lt", column, text(value));
  }
  /** `col <= value` */
  lte(column: string, value: FilterValue): this {
    return this.filter("lte", column, text(value));
  }
  /** `col > value` */
  gt(column: string, value: FilterValue): this {
    return this.filter("gt", column, text(value));
  }
  /** `col >= value` */
  gte(column: string, value: FilterValue): this {
    return this.filter("gte", column, text(value));
  }
  /** `col::text LIKE pattern` (`%` and `_` are wildcards). */
  like(column: string, pattern: string): this {
    return this.filter("like", column, pattern);
  }
  /** Case-insensitive `like`. */
  ilike(column: string, pattern: string): this {
    return this.filter("ilike", column, pattern);
  }
  /** `col = ANY(values)`; items with commas or quotes are quoted for you. */
  in(column: string, values: readonly FilterValue[]): this {
    if (values.length === 0) throw new TypeError(`in(${column}): needs at least one value`);
    return this.filter("in", column, values.map(inListItem).join(","));
  }

  protected filter(op: string, column: string, value: string): this {
    this.params.push([`${op}.${column}`, value]);
    return this;
  }

  /** Sends the request; `await` does it for you. */
  abstract run(): Promise<T>;

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.run().then(onfulfilled, onrejected);
  }
}

/** `GET /v1/db/:table` */
export class SelectQuery<R extends object> extends Filtered<R[]> {
  private columns: string | null = null;
  private readonly orders: string[] = [];
  private limitValue: number | null = null;
  private offsetValue: number | null = null;

  /** `select=col1,col2` (an array or a comma-separated string); `*` by default. */
  select(columns: string | readonly string[]): this {
    this.columns = typeof columns === "string" ? columns : columns.join(",");
    return this;
  }
  /** `order=col.asc|col.desc`; call again for a tie-breaker. */
  order(column: string, options: { ascending?: boolean } = {}): this {
    this.orders.push(`${column}.${options.ascending === false ? "desc" : "asc"}`);
    return this;
  }
  /** At most `n` rows (default 100, maximum 1000). */
  limit(n: number): this {
    this.limitValue = n;
    return this;
  }
  /** Skip `n` rows: with `limit`, a page. */
  offset(n: number): this {
    this.offsetValue = n;
    return this;
  }

  private query(): Query {
    const q: Query = [];
    if (this.columns !== null) q.push(["select", this.columns]);
    if (this.orders.length > 0) q.push(["order", this.orders.join(",")]);
    if (this.limitValue !== null) q.push(["limit", String(this.limitValue)]);
    if (this.offsetValue !== null) q.push(["offset", String(this.offsetValue)]);
    return [...q, ...this.params];
  }

  run(): Promise<R[]> {
    return this.transport.json<R[]>({ method: "GET", path: tablePath(this.table), query: this.query() });
  }

  /** The page and the total number of matching rows (`count=exact`, header `X-Total-Count`). */
  async withCount(): Promise<{ rows: R[]; count: number }> {
    const res = await this.transport.send({
      method: "GET",
      path: tablePath(this.table),
      query: [...this.query(), ["count", "exact"]],
    });
    return { rows: (await res.json()) as R[], count: Number(res.headers.get("x-total-count") ?? "0") };
  }
}

/** `PATCH` or `DELETE /v1/db/:table` with filters (AtlasHub refuses them without one). */
export class WriteQuery<T> extends Filtered<T> {
  constructor(
    transport: Transport,
    table: string,
    private readonly method: "PATCH" | "DELETE",
    private readonly returning: Returning,
    private readonly body?: unknown,
  ) {
    super(transport, table);
  }

  run(): Promise<T> {
    return this.transport.json<T>({
      method: this.method,
      path: tablePath(this.table),
      query: [["return", this.returning], ...this.params],
      body: this.body,
    });
  }
}

/** One table of the project: `db.from("notes")`. */
export class TableRef<R extends object> {
  constructor(
    private readonly transport: Transport,
    private readonly table: string,
  ) {}

  /** Rows, `*` by default; chain filters, `order`, `limit`, `offset`, then `await`. */
  select(columns: string | readonly string[] = "*"): SelectQuery<R> {
    return new SelectQuery<R>(this.transport, this.table).select(columns);
  }

  /** `POST {"rows": [...]}`: all or nothing; answers the inserted rows, or `{inserted}` with `returning: "minimal"`. */
  insert(rows: Partial<R> | readonly Partial<R>[], options?: { returning?: "representation" }): Promise<R[]>;
  insert(rows: Partial<R> | readonly Partial<R>[], options: { returning: "minimal" }): Promise<{ inserted: number }>;
  insert(rows: Partial<R> | readonly Partial<R>[], options: { returning?: Returning } = {}): Promise<unknown> {
    const list = Array.isArray(rows) ? rows : [rows];
    return this.transport.json({
      method: "POST",
      path: tablePath(this.table),
      query: [["return", options.returning ?? "representation"]],
      body: { rows: list },
    });
  }

  /** `PATCH {"values": {...}}` on the rows the chained filters match; answers them, or `{updated}`. */
  update(values: Partial<R>, options?: { returning?: "representation" }): WriteQuery<R[]>;
  update(values: Partial<R>, options: { returning: "minimal" }): WriteQuery<{ updated: number }>;
  update(values: Partial<R>, options: { returning?: Returning } = {}): WriteQuery<unknown> {
    return new WriteQuery(this.transport, this.table, "PATCH", options.returning ?? "representation", { values });
  }

  /** `DELETE` the rows the chained filters match; answers `{deleted}`, plus `rows` with `returning: "representation"`. */
  delete(options?: { returning?: "minimal" }): WriteQuery<{ deleted: number }>;
  delete(options: { returning: "representation" }): WriteQuery<{ deleted: number; rows: R[] }>;
  delete(options: { returning?: Returning } = {}): WriteQuery<unknown> {
    return new WriteQuery(this.transport, this.table, "DELETE", options.returning ?? "minimal");
  }
}

/** `/v1/db`: tables and rows. */
export class DbClient {
  constructor(private readonly transport: Transport) {}

  /** A table to query: `from<Note>("notes")` types the rows. */
  from<R extends object = Row>(table: string): TableRef<R> {
    return new TableRef<R>(this.transport, table);
  }

  /** `GET /v1/db/tables`: the tables this key may see, with their columns. */
  async tables(): Promise<TableInfo[]> {
    const body = await this.transport.json<{ tables: TableInfo[] }>({ method: "GET", path: "/v1/db/tables" });
    return body.tables;
  }
}

function tablePath(table: string): string {
  return `/v1/db/${encodeURIComponent(table)}`;
}
