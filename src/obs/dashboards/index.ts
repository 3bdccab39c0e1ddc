/** Dashboards: panels of PromQL queries kept in the kv store, and the built-in dashboard of a node. */
export { DashboardStore, DEFAULT_DASHBOARD, DASHBOARD_PREFIX, PANEL_TYPES, PANEL_UNITS, parseDashboard } from './dashboards.js';
export type { Dashboard, Panel, Threshold } from './dashboards.js';
