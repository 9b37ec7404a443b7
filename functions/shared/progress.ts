/**
 * Progress of a paged read in the operator CLI: nothing for a read that is over within about a
 * second, then a line on stderr every second saying how far it got (stdout stays clean for
 * `--json` and pipes), and a closing line once it is done. On a terminal the line is rewritten
 * in place; elsewhere (a log, CI) each one is its own line.
 */
export interface ProgressOptions {
  /** Where the lines go (process.stderr). */
  out?: { write(text: string): unknown; isTTY?: boolean };
  /** Quiet for this long (ms) before the first line. */
  afterMs?: number;
  /** Time between lines (ms). */
  everyMs?: number;
}

export class Progress {
  private count = 0;
  private shown = false;
  private readonly started = Date.now();
  private readonly timer: NodeJS.Timeout;
  private interval: NodeJS.Timeout | undefined;
  private readonly out: NonNullable<ProgressOptions['out']>;

  /** `what`: the read in words ("reading the ledger"); `unit`: what is counted ("entries"). */
  constructor(
    private readonly what: string,
    private readonly unit: string,
    options: ProgressOptions = {},
  ) {
    this.out = options.out ?? process.stderr;
    const every = options.everyMs ?? 1000;
    const first = setTimeout(() => {
      this.show();
      this.interval = setInterval(() => this.show(), every);
      this.interval.unref();
    }, options.afterMs ?? 1000);
    first.unref();
    this.timer = first;
  }

  /** Counts items read. */
  add(n = 1): void {
    this.count += n;
  }

  /** Ends the progress; says how it ended if a line was shown. */
  done(): void {
    clearTimeout(this.timer);
    if (this.interval) clearInterval(this.interval);
    if (this.shown) this.write(`${this.what}: ${this.count.toLocaleString('en-US')} ${this.unit} in ${((Date.now() - this.started) / 1000).toFixed(1)} s`, true);
  }

  private show(): void {
    this.shown = true;
    this.write(`${this.what}… ${this.count.toLocaleString('en-US')} ${this.unit} so far`, false);
  }

  private write(line: string, last: boolean): void {
    if (this.out.isTTY) this.out.write(`\r\x1b[2Kfleetwarden: ${line}${last ? '\n' : ''}`);
    else this.out.write(`fleetwarden: ${line}\n`);
  }
}

/** Passes the items of a paged read through, counting them; the progress ends with the read. */
export async function* withProgress<T>(items: AsyncIterable<T>, what: string, unit: string, options?: ProgressOptions): AsyncGenerator<T> {
  const progress = new Progress(what, unit, options);
  try {
    for await (const item of items) {
      progress.add();
      yield item;
    }
  } finally {
    progress.done();
  }
}
