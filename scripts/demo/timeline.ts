import type { DynamoLedger } from '../../functions/ledger/store';
import type { LocalStack } from '../../local/provision';

/** What every chapter of the demo is given: the provisioned stack, its ledger, the timeline. */
export interface DemoContext {
  stack: LocalStack;
  ledger: DynamoLedger;
  timeline: Timeline;
}

/** Prints what happened as a readable timeline: elapsed time, actor, what it did. */
export class Timeline {
  private readonly started = performance.now();
  private readonly color = process.stdout.isTTY;

  private paint(code: string, text: string): string {
    return this.color ? `\u001b[${code}m${text}\u001b[0m` : text;
  }

  private stamp(): string {
    return this.paint('2', `+${((performance.now() - this.started) / 1000).toFixed(2).padStart(6)}s`);
  }

  section(title: string): void {
    console.log(`\n${this.paint('1', `== ${title}`)}`);
  }

  step(actor: string, text: string): void {
    console.log(`${this.stamp()}  ${this.paint('36', actor.padEnd(22))} ${text}`);
  }

  detail(text: string): void {
    console.log(`${' '.repeat(33)}${this.paint('2', text)}`);
  }

  ok(text: string): void {
    console.log(`${this.stamp()}  ${this.paint('32', '✔'.padEnd(22))} ${text}`);
  }

  fail(text: string): void {
    console.log(`${this.stamp()}  ${this.paint('31', '✘'.padEnd(22))} ${text}`);
  }
}
