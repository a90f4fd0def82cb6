export { parseIni, ConfigError, MAX_CONFIG_BYTES, type IniDocument, type IniSection, type IniValue } from './ini.js';
export { SCHEMA, schemaEntries, LOG_LEVELS, CONVERGENCE_MODES, type ConfigKey, type RawConfig, type SectionName } from './schema.js';
export { parseHostPort, formatHostPort, formatSize, isLoopbackHost, type HostPort } from './types.js';
export { CONFIG_FILE, loadConfig, parseConfigText, validateConfig, resolveConfig, type NodeConfig, type ConfigOverrides } from './load.js';
export { renderConfigFile, renderConfigTable, TABLE_BEGIN, TABLE_END } from './render.js';
