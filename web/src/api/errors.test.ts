import { describe, expect, it } from 'vitest';
import { humanizeCode, sendRefusal } from './errors';

describe('why a send was refused', () => {
  it('a forbidden send in a DM is a block', () => {
    expect(sendRefusal('forbidden', 'you are muted', true)).toBe('Not delivered: one of you has blocked the other.');
  });
  it('elsewhere the code says it', () => {
    expect(sendRefusal('forbidden', 'you are muted', false)).toBe(humanizeCode('forbidden'));
    expect(sendRefusal('invalid_input', 'too long', true)).toBe('Not accepted: too long');
  });
});
