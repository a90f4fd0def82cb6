import { describe, expect, it } from 'vitest';
import { CapstanError, NotFoundError } from '../../src/errors.js';

describe('NotFoundError.answer', () => {
  it('is a NotFoundError like any other, only without stack frames, and leaves the stack limit as it was', () => {
    const limit = Error.stackTraceLimit;
    const e = NotFoundError.answer('no such file');
    expect(e).toBeInstanceOf(NotFoundError);
    expect(e).toBeInstanceOf(CapstanError);
    expect(e.code).toBe('ERR_NOT_FOUND');
    expect(e.name).toBe('NotFoundError');
    expect(e.message).toBe('no such file');
    expect(e.stack).toBe('NotFoundError: no such file');
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new NotFoundError('x').stack?.split('\n').length).toBeGreaterThan(1);
  });
});
