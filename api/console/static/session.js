// The signed-in token, kept in sessionStorage only: gone when the tab closes, never in a URL,
// never in a cookie (so no other site can make the browser send it).

const KEY = "backfills.console.token";
let me = null;

export function token() {
  return sessionStorage.getItem(KEY);
}

export function signIn(value, profile) {
  sessionStorage.setItem(KEY, value);
  me = profile;
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  me = null;
}

export function profile() {
  return me;
}

export function setProfile(value) {
  me = value;
}

export function team(teamId) {
  return me ? me.teams.find((t) => t.team_id === Number(teamId)) || null : null;
}

/** Whether the token and the role allow writes in the team: the API would refuse otherwise. */
export function canWrite(teamId) {
  const found = team(teamId);
  return Boolean(
    me && me.scopes.includes("dwh_transfers_write") && found
      && found.permissions.includes("dwh.transfer.edit"),
  );
}

export function canRead(teamId) {
  const found = team(teamId);
  return Boolean(
    me && me.scopes.includes("dwh_transfers_read") && found
      && found.permissions.includes("dwh.transfer.view"),
  );
}

/** The first team the token can read in, for the landing page. */
export function defaultTeam() {
  if (!me) return null;
  const readable = me.teams.find((t) => canRead(t.team_id));
  return readable ? readable.team_id : null;
}
