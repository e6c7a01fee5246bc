import type { ErrorCode, Problem } from './types';

/** Words a person understands, per machine-readable error code. */
const HUMAN: Record<ErrorCode, string> = {
  malformed_json: 'The app sent something the server could not read. Please reload the page.',
  unknown_type: 'The app and the server do not understand each other. Please reload the page.',
  invalid_input: 'Some of what you entered is not allowed.',
  content_too_long: 'That message is too long. Please shorten it.',
  frame_too_large: 'That message is too large to send.',
  rate_limited: 'You are going too fast. Please wait a moment and try again.',
  unauthorized: 'Please log in again.',
  token_expired: 'Your session expired. Please log in again.',
  refresh_reused: 'You were logged out because your session was used elsewhere. Please log in again.',
  invalid_credentials: 'Wrong username or password.',
  wrong_access_code: 'That access code is wrong.',
  forbidden: 'You are not allowed to do that.',
  not_found: 'That does not exist (or you cannot see it).',
  conflict: 'That name is already taken.',
  not_joined: 'You are not in that room yet.',
  too_many_rooms: 'You have too many rooms open on this connection. Leave one first.',
  internal: 'Something went wrong on the server. Please try again.',
  unavailable: 'The server is temporarily unavailable. Please try again shortly.',
  gone: 'This invite link can no longer be used.',
  file_too_large: 'That file is too large to upload.',
  quota_exceeded: 'You have used up your storage for uploads.',
};

export function humanizeCode(code: string | undefined, detail?: string): string {
  if ((code === 'invalid_input' || code === 'file_too_large' || code === 'quota_exceeded') && detail) return `Not accepted: ${detail}`;
  if (code && code in HUMAN) return HUMAN[code as ErrorCode];
  return detail || 'Something went wrong. Please try again.';
}

/**
 * Why a message was not sent. In a DM nobody moderates, so a `forbidden` send means a
 * block (blocking mutes both people in the conversation: docs/protocol.md §6).
 */
export function sendRefusal(code: string | undefined, detail: string | undefined, isDirect: boolean): string {
  if (code === 'forbidden' && isDirect) return 'Not delivered: one of you has blocked the other.';
  return humanizeCode(code, detail);
}

/** A failed REST call, carrying the server's problem document when there was one. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorCode | 'network';
  readonly detail: string;

  constructor(status: number, code: ErrorCode | 'network', detail: string) {
    super(code === 'network' ? 'Cannot reach the server. Check your connection.' : humanizeCode(code, detail));
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.detail = detail;
  }

  static fromProblem(status: number, body: unknown): ApiError {
    const p = body as Partial<Problem> | null;
    if (p && typeof p.code === 'string') return new ApiError(status, p.code, p.detail ?? '');
    const fallback: ErrorCode = status === 401 ? 'unauthorized' : status === 404 ? 'not_found' : status === 429 ? 'rate_limited' : 'internal';
    return new ApiError(status, fallback, '');
  }
}

/** A message for any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return 'Something went wrong. Please try again.';
}
