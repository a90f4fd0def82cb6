// Preloaded (node --import) into `capstan run` by events-kill.test.ts: SIGKILLs
// the gateway at one step of a commit, the CAPSTAN_TEST_KILL_AT-th time that
// step is reached (fault injection only; the gateway is otherwise the real
// one, from dist/):
//   before-intent  an intent is about to be written (nothing on disk yet)
//   intent         an intent is synced, the slot update not made
//   cas            a slot compare-and-swap is durable (journal, LevelDB or PostgreSQL),
//                  the event not yet written
//   event          the event is synced (the intent gone), the client not answered
const step = process.env.CAPSTAN_TEST_KILL_STEP;
const at = Number(process.env.CAPSTAN_TEST_KILL_AT ?? '1');
if (step) {
  const { Outbox } = await import('../../dist/events/outbox.js');
  const { LevelSlotStore } = await import('../../dist/store/slots/level.js');
  const { JournalSlotStore } = await import('../../dist/store/packs/journal-slot-store.js');
  const { PostgresSlotStore } = await import('../../dist/store/slots/postgres/postgres-slot-store.js');
  let reached = 0;
  const die = () => {
    process.kill(process.pid, 'SIGKILL');
    return new Promise(() => {});
  };
  const wrap = (proto, method, when) => {
    const original = proto[method];
    proto[method] = async function (...args) {
      if (when === 'before' && ++reached === at) await die();
      const result = await original.apply(this, args);
      if (when === 'after' && ++reached === at) await die();
      return result;
    };
  };
  if (step === 'before-intent') wrap(Outbox.prototype, 'intend', 'before');
  else if (step === 'intent') wrap(Outbox.prototype, 'intend', 'after');
  else if (step === 'event') wrap(Outbox.prototype, 'commit', 'after');
  else if (step === 'cas') {
    // The embedded engine's slots (journal), plain LevelDB slots, PostgreSQL slots: the innermost store, so
    // the kill comes once the update is durable.
    wrap(JournalSlotStore.prototype, 'compareAndSwap', 'after');
    wrap(LevelSlotStore.prototype, 'compareAndSwap', 'after');
    wrap(PostgresSlotStore.prototype, 'compareAndSwap', 'after');
  } else throw new Error(`unknown CAPSTAN_TEST_KILL_STEP ${step}`);
}
