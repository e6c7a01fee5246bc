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

/** The notification bell (an SVG, like the lock). */
export function BellIcon() {
  return (
    <svg className="bell-icon" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" focusable="false">
      <path d="M8 1.5a4.5 4.5 0 0 0-4.5 4.5v3L2 11.5h12L12.5 9V6A4.5 4.5 0 0 0 8 1.5Z" fill="currentColor" />
      <path d="M6.2 13a1.9 1.9 0 0 0 3.6 0" fill="none" stroke="currentColor" strokeWidth="1.5" />
    </svg>
  );
}

/** The mark of a direct conversation. */
export function DirectIcon() {
  return (
    <span className="room-icon" aria-hidden="true">
      @
    </span>
  );
}
