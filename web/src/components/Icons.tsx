/** A small lock for private rooms (an SVG, so it renders without emoji fonts). */
export function RoomIcon({ isPrivate }: { isPrivate: boolean }) {
  if (!isPrivate) {
    return (
      <span className="room-icon" aria-hidden="true">
        #
      </span>
    );
  }
  return (
    <svg className="room-icon lock" viewBox="0 0 16 16" width="13" height="13" aria-hidden="true" focusable="false">
      <rect x="2.5" y="7" width="11" height="8" rx="1.5" fill="currentColor" />
      <path d="M5 7V5a3 3 0 0 1 6 0v2" fill="none" stroke="currentColor" strokeWidth="1.8" />
    </svg>
  );
}
