/** src/homes: the homes of central-directory users, created on first login and kept (sealed) in the slot store. */
export {
  HOME_RECORD_VERSION,
  MAX_HOME_NAME_BYTES,
  deriveHomeKeys,
  homeStorageIndex,
  isHomeStorageIndex,
  openHomeRecord,
  sealHomeRecord,
  type HomeKeys,
  type HomeRecordContent,
  type HomeState,
} from './home-record.js';
export { HomeStore, type HomeLookup, type HomeOpening, type HomeStoreOptions, type ListedHome } from './home-store.js';
