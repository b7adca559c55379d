// HubSpot for the browser tests: a stand-in for the CRM v3 API calls the
// crm-hubspot plugin makes (contact search and create; calls, notes and
// communications associated to a contact), checking the private-app token, and the
// plugin installed against it.

import { createServer } from 'node:http';
import path from 'node:path';

import { api, REPO } from './server.mjs';

/** The digits of a stored number without a leading US country code (HubSpot's calculated copy). */
function calculated(stored) {
  const digits = String(stored ?? '').replace(/\D+/g, '');
  return digits.length === 11 && digits.startsWith('1') ? digits.slice(1) : digits;
}

function matches(contact, filter) {
  const prop = (name) => String(contact.properties[name] ?? '');
  const value = String(filter.value ?? '');
  switch (`${filter.propertyName}/${filter.operator}`) {
    case 'hs_searchable_calculated_phone_number/EQ': return prop('phone') !== '' && calculated(prop('phone')) === value;
    case 'hs_searchable_calculated_mobile_number/EQ': return prop('mobilephone') !== '' && calculated(prop('mobilephone')) === value;
    case 'email/EQ': return prop('email').toLowerCase() === value.toLowerCase();
    default:
      if (filter.operator === 'EQ') return prop(filter.propertyName) === value;
      if (filter.operator === 'CONTAINS_TOKEN') return prop(filter.propertyName).split(/[;, ]/).some((t) => t.toLowerCase() === value.toLowerCase());
      return false;
  }
}

/**
 * Starts the stand-in holding `contacts` ([{id, properties}]). `failWrites(statuses)`
 * answers the next engagement writes with those statuses. Every request is recorded.
 */
export async function startHubSpot(token, contacts = []) {
  const requests = [];
  const engagements = [];
  let fail = [];
  let next = 100;
  const http = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let json = null;
      try { json = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'); } catch { /* not JSON */ }
      requests.push({ method: req.method, path: req.url, authorization: req.headers.authorization, json });
      const answer = (status, body) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const error = (status, category, message) => answer(status, { status: 'error', category, message, correlationId: 'browser' });
      if (req.headers.authorization !== `Bearer ${token}`) return error(401, 'INVALID_AUTHENTICATION', 'Authentication credentials not found.');
      if (req.method !== 'POST') return error(405, 'METHOD', 'Method not allowed');
      if (req.url === '/crm/v3/objects/contacts/search') {
        const groups = json?.filterGroups;
        if (!Array.isArray(groups)) return error(400, 'VALIDATION_ERROR', 'filterGroups is required');
        const results = contacts.filter((c) => groups.some((g) => g.filters?.length && g.filters.every((f) => matches(c, f))));
        return answer(200, { total: results.length, results });
      }
      if (req.url === '/crm/v3/objects/contacts') {
        if (!json?.properties) return error(400, 'VALIDATION_ERROR', 'properties is required');
        const contact = { id: String(next += 1), properties: json.properties };
        contacts.push(contact);
        return answer(201, contact);
      }
      const m = /^\/crm\/v3\/objects\/(calls|notes|communications)$/.exec(req.url);
      if (m) {
        if (fail.length) return error(fail.shift(), 'SCRIPTED', 'scripted failure');
        const to = json?.associations?.[0]?.to?.id;
        if (!contacts.some((c) => c.id === to)) return error(400, 'VALIDATION_ERROR', 'associated contact does not exist');
        engagements.push({ kind: m[1], json });
        return answer(201, { id: String(next += 1), properties: json.properties });
      }
      return error(404, 'OBJECT_NOT_FOUND', 'Unsupported request');
    });
  });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${http.address().port}`,
    requests,
    engagements,
    contacts,
    failWrites: (statuses) => { fail = [...statuses]; },
    close: () => new Promise((resolve) => { http.closeAllConnections?.(); http.close(() => resolve()); }),
  };
}

/** Installs the real crm-hubspot plugin against the stand-in (admin API). */
export async function installHubSpot(server, adminToken, hubspot, token) {
  return api(server.base, adminToken, 'POST', '/api/v1/plugins', {
    path: path.join(REPO, 'plugins', 'dist', 'crm-hubspot'),
    config: { access_token: token, api_base: hubspot.base, portal_id: '4242' },
    allow_hosts: [hubspot.base],
  });
}
