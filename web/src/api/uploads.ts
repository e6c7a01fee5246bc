// Attachments: uploading a file with progress, and the signed links that let an
// `<img src>` or a download link fetch it (they cannot carry the bearer token; see
// docs/security.md). The server sniffs the type and makes the thumbnail.
import { ApiError } from './errors';
import type { AuthManager } from './rest';
import type { Attachment, Upload, UploadLink } from './protocol';

export type { Attachment, Upload, UploadLink };

/** A link is renewed this long before it expires, so an image never loads a dead one. */
const RENEW_BEFORE_MS = 60_000;

/** An upload in flight: its progress (0 to 1) as it goes, then the stored upload. */
export interface UploadTask {
  promise: Promise<Upload>;
  abort(): void;
}

/** Uploads files and hands out signed links, cached per upload until near expiry. */
export class Uploader {
  private links = new Map<string, { link: UploadLink; expires: number }>();
  private inflight = new Map<string, Promise<UploadLink>>();

  constructor(
    private readonly auth: AuthManager,
    private readonly base = '/api/v1',
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Streams `file` to `POST /uploads`; `onProgress` gets the fraction sent. */
  upload(file: Blob & { name?: string }, onProgress: (fraction: number) => void): UploadTask {
    const xhr = new XMLHttpRequest();
    const promise = (async () => {
      const token = await this.auth.accessToken();
      if (!token) throw new ApiError(401, 'unauthorized', '');
      return new Promise<Upload>((resolve, reject) => {
        const name = file.name || 'file';
        xhr.open('POST', `${this.base}/uploads?filename=${encodeURIComponent(name)}`);
        xhr.setRequestHeader('Authorization', `Bearer ${token}`);
        xhr.setRequestHeader('Content-Type', 'application/octet-stream');
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
        };
        xhr.onload = () => {
          let body: unknown = null;
          try {
            body = JSON.parse(xhr.responseText);
          } catch {
            /* not JSON */
          }
          if (xhr.status === 201) {
            onProgress(1);
            resolve(body as Upload);
          } else {
            reject(ApiError.fromProblem(xhr.status, body));
          }
        };
        xhr.onerror = () => reject(new ApiError(0, 'network', ''));
        xhr.onabort = () => reject(new ApiError(0, 'network', 'cancelled'));
        xhr.send(file);
      });
    })();
    return { promise, abort: () => xhr.abort() };
  }

  /** A signed link to upload `id` (and its thumbnail), from the cache while fresh. */
  link(id: string): Promise<UploadLink> {
    const cached = this.links.get(id);
    if (cached && cached.expires - this.now() > RENEW_BEFORE_MS) return Promise.resolve(cached.link);
    const running = this.inflight.get(id);
    if (running) return running;
    const flight = this.fetchLink(id).finally(() => this.inflight.delete(id));
    this.inflight.set(id, flight);
    return flight;
  }

  private async fetchLink(id: string): Promise<UploadLink> {
    const token = await this.auth.accessToken();
    if (!token) throw new ApiError(401, 'unauthorized', '');
    let res: Response;
    try {
      res = await fetch(`${this.base}/uploads/${encodeURIComponent(id)}/link`, {
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      });
    } catch {
      throw new ApiError(0, 'network', '');
    }
    const body: unknown = await res.json().catch(() => null);
    if (!res.ok) throw ApiError.fromProblem(res.status, body);
    const link = body as UploadLink;
    this.links.set(id, { link, expires: Date.parse(link.expires_at) });
    return link;
  }

  /** Deletes an upload no message carries (a draft attachment removed before sending). */
  async discard(id: string): Promise<void> {
    const token = await this.auth.accessToken();
    if (!token) return;
    await fetch(`${this.base}/uploads/${encodeURIComponent(id)}`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${token}` },
    }).catch(() => {});
  }
}

/** Images the server thumbnailed are shown inline; everything else is a download. */
export const isInlineImage = (a: Attachment) => !!a.thumbnail_url;

/** `1.2 MB`, `340 KB`, `12 bytes`. */
export function fileSize(bytes: number): string {
  if (bytes >= 1_000_000) return `${(bytes / 1_000_000).toFixed(1)} MB`;
  if (bytes >= 1_000) return `${Math.round(bytes / 1_000)} KB`;
  return `${bytes} bytes`;
}
