import { afterAll } from 'vitest';
import { stopRegisteredServers } from '../helpers/server-stops.js';

// Registered before any test file's hooks, so it runs after them (vitest runs after-hooks as a stack):
// it stops only what a fixture started and nothing stopped, e.g. after a beforeAll timed out mid-start.
afterAll(stopRegisteredServers, 60_000);
