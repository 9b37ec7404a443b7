import { describe, expect, it } from 'vitest';
import { MalformedEventError, RetryableError, TerminalError, UnknownEventError } from '../../functions/shared/errors';
import type { DeadLetters } from '../../functions/shared/dead-letters';
import { RecordingDeadLetters, pipelineTools, sqsRecord } from '../sqs-support';
import { backoffVisibilitySeconds, parseRecordBody, processSqsRecords } from '../../functions/shared/sqs-records';
import { sqsText } from '../../functions/shared/validation';



/** Accepts `{ "n": <number> }`; anything else is unknown or malformed. */
function parse(raw: unknown): number {
  if (typeof raw !== 'object' || raw === null || !('n' in raw)) throw new UnknownEventError('not an n event');
  const n = (raw as { n: unknown }).n;
  if (typeof n !== 'number') throw new MalformedEventError('n: expected number');
  return n;
}

describe('parseRecordBody (the parse step every SQS consumer runs)', () => {
  it('should give the typed event for a body its parser accepts', () => {
    expect(parseRecordBody('{"n":3}', parse)).toEqual({ ok: true, event: 3 });
  });

  it('should name a body that is not JSON as a malformed event', () => {
    const parsed = parseRecordBody('{"n":', parse);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toMatchObject({ name: 'Terminal.MalformedEvent', message: expect.stringContaining('body is not JSON') });
  });

  it("should pass a parser's Terminal.* refusal on with its name and reason", () => {
    expect(parseRecordBody('{"m":1}', parse)).toMatchObject({ ok: false, error: { name: 'Terminal.UnknownEvent', message: 'not an n event' } });
    expect(parseRecordBody('{"n":"x"}', parse)).toMatchObject({ ok: false, error: { name: 'Terminal.MalformedEvent' } });
  });

  it('should let a parser bug (an error that is not Terminal.*) propagate instead of parking it as bad input', () => {
    expect(() =>
      parseRecordBody('{}', () => {
        throw new TypeError('bug');
      }),
    ).toThrow(TypeError);
  });
});

describe('processSqsRecords (parse, act, park or retry, partial batch response)', () => {
  it('should park bad records with their reason, fail only the transient one, and act on the rest', async () => {
    // Prepare
    const deadLetters = new RecordingDeadLetters();
    const acted: number[] = [];
    const act = async (n: number) => {
      if (n === 13) throw new TerminalError('13 is refused for good');
      if (n === 7) throw new RetryableError('try 7 again later');
      acted.push(n);
      return n * 2;
    };
    const done: [number, number][] = [];
    const event = { Records: [sqsRecord('a', '{"n":1}'), sqsRecord('b', 'not json'), sqsRecord('c', '{"x":1}'), sqsRecord('d', '{"n":13}'), sqsRecord('e', '{"n":7}'), sqsRecord('f', '{"n":2}')] };

    // Act
    const response = await processSqsRecords(event, { parse, act, deadLetters, parallel: false, onDone: (e, r) => done.push([e, r]) }, pipelineTools);

    // Assess
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'e' }]);
    expect(acted).toEqual([1, 2]);
    expect(done).toEqual([
      [1, 2],
      [2, 4],
    ]);
    expect(deadLetters.parked.map((p) => [p.body, p.errorName])).toEqual([
      ['not json', 'Terminal.MalformedEvent'],
      ['{"x":1}', 'Terminal.UnknownEvent'],
      ['{"n":13}', 'Terminal.Error'],
    ]);
    expect(deadLetters.parked[2]!.reason).toBe('13 is refused for good');
  });

  it('should fail a record whose parking failed (the dead-letter queue unreachable), so nothing is lost, and go on with the rest', async () => {
    const deadLetters: DeadLetters = {
      park: async () => {
        throw new Error('SQS unavailable');
      },
    };
    const response = await processSqsRecords({ Records: [sqsRecord('a', 'not json'), sqsRecord('b', '{"n":1}')] }, { parse, act: async (n) => n, deadLetters, parallel: true }, pipelineTools);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'a' }]);
  });
});

describe('processSqsRecords with prepare (one look-up for the whole batch)', () => {
  it('should parse each record once and hand prepare the batch\'s events before the first act', async () => {
    // Prepare
    const seen: string[] = [];
    const counting = (raw: unknown) => {
      seen.push(`parse ${JSON.stringify(raw)}`);
      return parse(raw);
    };
    const event = { Records: [sqsRecord('a', '{"n":1}'), sqsRecord('b', 'not json'), sqsRecord('c', '{"n":2}')] };

    // Act
    const response = await processSqsRecords(
      event,
      { parse: counting, prepare: async (events) => void seen.push(`prepare ${events.join(',')}`), act: async (n) => void seen.push(`act ${n}`), deadLetters: new RecordingDeadLetters(), parallel: false },
      pipelineTools,
    );

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(seen).toEqual(['parse {"n":1}', 'parse {"n":2}', 'prepare 1,2', 'act 1', 'act 2']);
  });

  it('should fail only the record whose parser has a bug, as without prepare', async () => {
    const buggy = (raw: unknown) => {
      if ((raw as { n?: number }).n === 3) throw new TypeError('bug');
      return parse(raw);
    };
    const acted: number[] = [];
    const response = await processSqsRecords(
      { Records: [sqsRecord('a', '{"n":3}'), sqsRecord('b', '{"n":1}')] },
      { parse: buggy, prepare: async () => {}, act: async (n) => void acted.push(n), deadLetters: new RecordingDeadLetters(), parallel: false },
      pipelineTools,
    );
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'a' }]);
    expect(acted).toEqual([1]);
  });
});

describe('backoffVisibilitySeconds', () => {
  it('should grow by 5 s per receive and stop at 30 s', () => {
    expect([0, 1, 2, 3, 6, 7, 100].map(backoffVisibilitySeconds)).toEqual([5, 5, 10, 15, 30, 30, 30]);
  });
});

describe('sqsText (what a DLQ reason attribute can carry)', () => {
  it('should escape NUL, lone surrogates, U+FFFE and line breaks, and keep a surrogate pair whole when cutting', () => {
    expect(sqsText('a\u0000b\ud800c\ufffe\nd', 100)).toBe('a\\u0000b\\ud800c\\ufffe\\u000ad');
    expect(sqsText('ab😀', 3)).toBe('ab…');
    expect(sqsText('ab😀', 4)).toBe('ab😀');
  });

  it('should keep the reason of a body that is not JSON within what SQS accepts, even when V8 quotes half an emoji', () => {
    const parsed = parseRecordBody('😀', parse);
    expect(!parsed.ok && parsed.error.message).toMatch(/^body is not JSON: /);
    expect(!parsed.ok && /[\ud800-\udfff]/u.test(parsed.error.message)).toBe(false);
  });
});
