// Attachments in the conversation: images inline (the server's thumbnail) opening a
// lightbox with the full image, other files as download chips; and in the composer the
// attach button, drag & drop, paste, and each upload's progress. Images and downloads
// load through short-lived signed links (`client.uploads.link`), since `<img src>`
// cannot carry the bearer token.
import { useCallback, useEffect, useRef, useState, type ClipboardEvent, type DragEvent } from 'react';
import { describeError, fileSize, isInlineImage, type Attachment, type ChatClient, type Upload } from '../api';
import './attachments.css';

/** A paperclip, drawn (an emoji may have no font on the device). */
function ClipIcon() {
  return (
    <svg width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" aria-hidden="true">
      <path d="M21 11.5l-8.5 8.5a5 5 0 0 1-7-7L14 4.5a3.3 3.3 0 0 1 4.7 4.7L10.2 17.7a1.7 1.7 0 0 1-2.4-2.4L15.5 7.6" />
    </svg>
  );
}

/** Files one message may carry (the server's limit too). */
export const MAX_ATTACHMENTS = 10;

/** The attachments of a message: thumbnails first, then file chips. */
export function AttachmentList({ client, attachments }: { client: ChatClient; attachments: Attachment[] }) {
  const [open, setOpen] = useState<Attachment | null>(null);
  const images = attachments.filter(isInlineImage);
  const files = attachments.filter((a) => !isInlineImage(a));
  return (
    <div className="attachments">
      {images.map((a) => (
        <Thumbnail key={a.id} client={client} attachment={a} onOpen={() => setOpen(a)} />
      ))}
      {files.map((a) => (
        <FileChip key={a.id} client={client} attachment={a} />
      ))}
      {open && <Lightbox client={client} attachment={open} onClose={() => setOpen(null)} />}
    </div>
  );
}

/** A signed URL of attachment `id` (its thumbnail when `thumbnail`), once known. */
function useSignedUrl(client: ChatClient, attachment: Attachment, thumbnail: boolean) {
  const [url, setUrl] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    client.uploads.link(attachment.id).then(
      (link) => live && setUrl((thumbnail ? link.thumbnail_url : null) ?? link.url),
      () => live && setFailed(true),
    );
    return () => {
      live = false;
    };
  }, [client, attachment.id, thumbnail]);
  return { url, failed };
}

function Thumbnail({ client, attachment, onOpen }: { client: ChatClient; attachment: Attachment; onOpen: () => void }) {
  const { url, failed } = useSignedUrl(client, attachment, true);
  // Reserve the thumbnail's box from the known size, so the list does not jump.
  const scale = Math.min(1, 320 / Math.max(attachment.width ?? 320, attachment.height ?? 320));
  const width = Math.round((attachment.width ?? 320) * scale);
  const height = Math.round((attachment.height ?? 240) * scale);
  return (
    <button type="button" className="thumb" onClick={onOpen} aria-label={`Open image ${attachment.filename}`} data-testid="attachment-image">
      {url && !failed ? (
        <img src={url} alt={attachment.filename} width={width} height={height} loading="lazy" />
      ) : (
        <span className="thumb-placeholder" style={{ width, height }}>
          {failed ? 'Image unavailable' : 'Loading image…'}
        </span>
      )}
    </button>
  );
}

function FileChip({ client, attachment }: { client: ChatClient; attachment: Attachment }) {
  const [error, setError] = useState<string | null>(null);
  async function download() {
    setError(null);
    try {
      const link = await client.uploads.link(attachment.id);
      // The server answers `Content-Disposition: attachment`: the page stays.
      const a = document.createElement('a');
      a.href = link.url;
      a.download = attachment.filename;
      a.rel = 'noopener';
      document.body.appendChild(a);
      a.click();
      a.remove();
    } catch (err) {
      setError(describeError(err));
    }
  }
  return (
    <span className="file-chip" data-testid="attachment-file">
      <button type="button" className="link" onClick={() => void download()} aria-label={`Download ${attachment.filename}`}>
        <ClipIcon /> {attachment.filename}
      </button>{' '}
      <span className="muted small">{fileSize(attachment.size)}</span>
      {error && (
        <span className="error small" role="alert">
          {' '}
          {error}
        </span>
      )}
    </span>
  );
}

/** The full image over the page; Escape, the close button or a click outside closes it. */
export function Lightbox({ client, attachment, onClose }: { client: ChatClient; attachment: Attachment; onClose: () => void }) {
  const { url, failed } = useSignedUrl(client, attachment, false);
  const closeRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const previous = document.activeElement as HTMLElement | null;
    closeRef.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        onClose();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => {
      window.removeEventListener('keydown', onKey);
      previous?.focus();
    };
  }, [onClose]);
  return (
    <div className="lightbox" role="dialog" aria-modal="true" aria-label={attachment.filename} onClick={onClose} data-testid="lightbox">
      <figure onClick={(e) => e.stopPropagation()}>
        {url && !failed ? (
          <img src={url} alt={attachment.filename} />
        ) : (
          <p className="muted">{failed ? 'Image unavailable' : 'Loading…'}</p>
        )}
        <figcaption>
          {attachment.filename}
          {attachment.width && attachment.height ? ` · ${attachment.width}×${attachment.height}` : ''} · {fileSize(attachment.size)}
        </figcaption>
      </figure>
      <button type="button" ref={closeRef} className="lightbox-close" onClick={onClose} aria-label="Close image">
        ✕
      </button>
    </div>
  );
}

/** One file being attached in the composer. */
export interface DraftFile {
  key: number;
  name: string;
  progress: number;
  status: 'uploading' | 'done' | 'failed';
  upload?: Upload;
  error?: string;
  abort?: () => void;
}

/** The composer's attachments: upload as soon as chosen, send once all are stored. */
export function useDraftAttachments(client: ChatClient) {
  const [files, setFiles] = useState<DraftFile[]>([]);
  const nextKey = useRef(0);
  const update = useCallback((key: number, patch: Partial<DraftFile>) => {
    setFiles((all) => all.map((f) => (f.key === key ? { ...f, ...patch } : f)));
  }, []);

  const add = useCallback(
    (list: FileList | File[]) => {
      const chosen = [...list].slice(0, Math.max(0, MAX_ATTACHMENTS - files.length));
      for (const file of chosen) {
        const key = nextKey.current++;
        const task = client.uploads.upload(file, (progress) => update(key, { progress }));
        setFiles((all) => [...all, { key, name: file.name || 'pasted file', progress: 0, status: 'uploading', abort: task.abort }]);
        task.promise.then(
          (upload) => update(key, { status: 'done', progress: 1, upload }),
          (err) => update(key, { status: 'failed', error: describeError(err) }),
        );
      }
    },
    [client, files.length, update],
  );

  const remove = useCallback(
    (key: number) => {
      setFiles((all) => {
        const gone = all.find((f) => f.key === key);
        if (gone?.status === 'uploading') gone.abort?.();
        if (gone?.upload) void client.uploads.discard(gone.upload.id);
        return all.filter((f) => f.key !== key);
      });
    },
    [client],
  );

  const ready = files.filter((f) => f.status === 'done' && f.upload).map((f) => f.upload!);
  const busy = files.some((f) => f.status === 'uploading');
  const clear = useCallback(() => setFiles([]), []);

  /** Drop and paste handlers for the composer (files only; text pastes as usual). */
  const onPaste = useCallback(
    (e: ClipboardEvent) => {
      const pasted = [...e.clipboardData.files];
      if (pasted.length) {
        e.preventDefault();
        add(pasted);
      }
    },
    [add],
  );
  const onDragOver = useCallback((e: DragEvent) => {
    if ([...e.dataTransfer.types].includes('Files')) e.preventDefault();
  }, []);
  const onDrop = useCallback(
    (e: DragEvent) => {
      if (e.dataTransfer.files.length) {
        e.preventDefault();
        add(e.dataTransfer.files);
      }
    },
    [add],
  );

  return { files, add, remove, ready, busy, clear, onPaste, onDragOver, onDrop };
}

export type DraftAttachments = ReturnType<typeof useDraftAttachments>;

/** The attach button (a hidden file input behind it). */
export function AttachButton({ drafts }: { drafts: DraftAttachments }) {
  const input = useRef<HTMLInputElement>(null);
  return (
    <>
      <button type="button" className="ghost attach" onClick={() => input.current?.click()} aria-label="Attach files" title="Attach files">
        <ClipIcon />
      </button>
      <input
        ref={input}
        type="file"
        multiple
        hidden
        data-testid="attach-input"
        onChange={(e) => {
          if (e.target.files) drafts.add(e.target.files);
          e.target.value = '';
        }}
      />
    </>
  );
}

/** The composer's chosen files, with progress and a remove button each. */
export function DraftList({ drafts }: { drafts: DraftAttachments }) {
  if (!drafts.files.length) return null;
  return (
    <ul className="drafts" aria-label="Attachments to send">
      {drafts.files.map((f) => (
        <li key={f.key} className={`draft ${f.status}`} data-testid="draft-attachment" data-status={f.status}>
          <span className="draft-name">{f.name}</span>
          {f.status === 'uploading' && <progress max={1} value={f.progress} aria-label={`Uploading ${f.name}`} />}
          {f.status === 'failed' && (
            <span className="error small" role="alert">
              {f.error}
            </span>
          )}
          <button type="button" className="link" onClick={() => drafts.remove(f.key)} aria-label={`Remove ${f.name}`}>
            ✕
          </button>
        </li>
      ))}
    </ul>
  );
}
