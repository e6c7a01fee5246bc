/** A panel's outcome line: what went well (a polite status) and what failed (an alert). */
export function Feedback({ status, error }: { status: string | null; error: string | null }) {
  return (
    <>
      {status && (
        <p className="small" role="status">
          {status}
        </p>
      )}
      {error && (
        <p className="error small" role="alert">
          {error}
        </p>
      )}
    </>
  );
}
