// The body of a room-settings save: only what the form changed, in the shape
// `PATCH /rooms/{id}` takes (docs/protocol.md §6), so an untouched form sends nothing.
import type { RoomView, UpdateRoom } from './types';

/** What the room-settings form holds; `accessCode` is blank unless a new code is typed. */
export interface RoomSettingsForm {
  name: string;
  topic: string;
  isPrivate: boolean;
  accessCode: string;
  clearCode: boolean;
}

export function settingsForm(room: RoomView): RoomSettingsForm {
  return { name: room.name, topic: room.topic ?? '', isPrivate: room.is_private, accessCode: '', clearCode: false };
}

/**
 * The changes from `room` to `form`, or null when there are none (the server answers an
 * empty PATCH with 422). `""` clears the topic or the code; a room made public drops its
 * code on the server, so no code is sent with it.
 */
export function roomPatch(room: RoomView, form: RoomSettingsForm): UpdateRoom | null {
  const patch: UpdateRoom = {};
  const name = form.name.trim();
  if (name && name !== room.name) patch.name = name;
  const topic = form.topic.trim();
  if (topic !== (room.topic ?? '')) patch.topic = topic;
  if (form.isPrivate !== room.is_private) patch.is_private = form.isPrivate;
  if (form.isPrivate) {
    if (form.accessCode) patch.access_code = form.accessCode;
    else if (form.clearCode && room.has_access_code) patch.access_code = '';
  }
  return Object.keys(patch).length ? patch : null;
}
