import type { AccessCodeHasher } from '../domain/access-code-hasher.js';
import type { Database, Transaction } from './database.js';

/**
 * The demo tenant of the CONTRACT ("Demo tenant"). Seeding only inserts what is missing, so a
 * second run changes nothing — in particular an access code a user has changed since is kept.
 */

type Role = 'basic' | 'call_center_agent' | 'call_center_supervisor' | 'advanced_user' | 'office_manager' | 'site_manager';

interface DemoMailbox {
  number: string;
  /** Personal mailbox of the user with this extension; absent for a shared mailbox. */
  owner?: { displayName: string; role: Role; site: string; portalPassword?: string };
  shared?: { displayName: string; members: string[] };
  /** Demo access code; absent = none yet (first-time setup). */
  accessCode?: string;
}

interface DemoDomain {
  name: string;
  voicemailNumbers: string[];
  autoAttendants: { number: string; options: { digit: string; action: 'voicemail_login' | 'transfer'; target?: string }[] }[];
  mailboxes: DemoMailbox[];
}

/** Portal (web) passwords of the demo users 201 and 202 of demo.local (README "Demo tenant"). */
export const DEMO_PORTAL_PASSWORDS = { '201': 'alice-portal-4826', '202': 'bob-portal-7391' } as const;

export const DEMO_TENANT: readonly DemoDomain[] = [
  {
    name: 'demo.local',
    voicemailNumbers: ['*97', 'voicemail'],
    autoAttendants: [{
      number: '15550100',
      options: [
        { digit: '9', action: 'voicemail_login' },
        { digit: '0', action: 'transfer', target: '201' },
      ],
    }],
    mailboxes: [
      { number: '201', owner: { displayName: 'Alice Example', role: 'office_manager', site: 'hq', portalPassword: DEMO_PORTAL_PASSWORDS['201'] }, accessCode: '4826' },
      { number: '202', owner: { displayName: 'Bob Rogers', role: 'basic', site: 'hq', portalPassword: DEMO_PORTAL_PASSWORDS['202'] }, accessCode: '7391' },
      { number: '203', owner: { displayName: 'Carol New', role: 'basic', site: 'hq' } },
      { number: '204', owner: { displayName: 'Dan Advanced', role: 'advanced_user', site: 'hq' }, accessCode: '5150' },
      { number: '290', shared: { displayName: 'Support', members: ['201', '202'] }, accessCode: '6042' },
    ],
  },
  {
    name: 'other.local',
    voicemailNumbers: ['*97', 'voicemail'],
    autoAttendants: [],
    mailboxes: [
      { number: '201', owner: { displayName: 'Olga Other', role: 'basic', site: 'main' }, accessCode: '1357' },
    ],
  },
];

export interface DemoSeedResult {
  /** Rows inserted (0 on a re-run over an intact demo tenant). */
  inserted: number;
}

/**
 * Seeds the demo tenant in one transaction; idempotent. With `passwords` (the portal password
 * hasher) the demo users' portal accounts are seeded too.
 */
export async function seedDemo(db: Database, hasher: AccessCodeHasher, passwords?: AccessCodeHasher): Promise<DemoSeedResult> {
  return db.transaction(async (tx) => {
    let inserted = 0;
    const count = async (sql: string, params: unknown[]): Promise<void> => {
      inserted += (await tx.query(`${sql} RETURNING 1 AS inserted`, params)).length;
    };

    for (const domain of DEMO_TENANT) {
      await count(`INSERT INTO domains (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, [domain.name]);
      const domainId = await idOf(tx, 'SELECT id FROM domains WHERE name = $1', [domain.name]);

      for (const number of domain.voicemailNumbers) {
        await count(`INSERT INTO access_numbers (domain_id, number, kind) VALUES ($1, $2, 'voicemail')
                     ON CONFLICT (domain_id, number) DO NOTHING`, [domainId, number]);
      }
      for (const aa of domain.autoAttendants) {
        await count(`INSERT INTO access_numbers (domain_id, number, kind) VALUES ($1, $2, 'auto_attendant')
                     ON CONFLICT (domain_id, number) DO NOTHING`, [domainId, aa.number]);
        for (const option of aa.options) {
          await count(`INSERT INTO auto_attendant_options (domain_id, number, digit, action, target)
                       VALUES ($1, $2, $3, $4, $5)
                       ON CONFLICT (domain_id, number, digit) DO NOTHING`,
          [domainId, aa.number, option.digit, option.action, option.target ?? null]);
        }
      }

      for (const mailbox of domain.mailboxes) {
        if (mailbox.owner) {
          await count(`INSERT INTO users (domain_id, extension, display_name, role, site) VALUES ($1, $2, $3, $4, $5)
                       ON CONFLICT (domain_id, extension) DO NOTHING`,
          [domainId, mailbox.number, mailbox.owner.displayName, mailbox.owner.role, mailbox.owner.site]);
          const userId = await idOf(tx, 'SELECT id FROM users WHERE domain_id = $1 AND extension = $2', [domainId, mailbox.number]);
          // A demo tenant seeded before sites existed gets them; a site set since is kept.
          await tx.query('UPDATE users SET site = $2 WHERE id = $1 AND site IS NULL', [userId, mailbox.owner.site]);
          if (passwords !== undefined && mailbox.owner.portalPassword !== undefined) {
            const has = await tx.query('SELECT 1 FROM portal_accounts WHERE user_id = $1', [userId]);
            if (has.length === 0) {
              await count(`INSERT INTO portal_accounts (user_id, password_hash) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING`,
                [userId, await passwords.hash(mailbox.owner.portalPassword)]);
            }
          }
          await count(`INSERT INTO mailboxes (domain_id, number, owner_user_id) VALUES ($1, $2, $3)
                       ON CONFLICT (domain_id, number) DO NOTHING`, [domainId, mailbox.number, userId]);
        }
      }
      // Shared mailboxes after the users, whose rows their members reference.
      for (const mailbox of domain.mailboxes) {
        if (mailbox.shared) {
          await count(`INSERT INTO mailboxes (domain_id, number, shared, display_name) VALUES ($1, $2, true, $3)
                       ON CONFLICT (domain_id, number) DO NOTHING`, [domainId, mailbox.number, mailbox.shared.displayName]);
          for (const member of mailbox.shared.members) {
            await count(`INSERT INTO mailbox_members (mailbox_id, user_id)
                         SELECT m.id, u.id FROM mailboxes m, users u
                          WHERE m.domain_id = $1 AND m.number = $2 AND u.domain_id = $1 AND u.extension = $3
                         ON CONFLICT (mailbox_id, user_id) DO NOTHING`, [domainId, mailbox.number, member]);
          }
        }
      }

      for (const mailbox of domain.mailboxes) {
        if (mailbox.accessCode === undefined) continue;
        const mailboxId = await idOf(tx, 'SELECT id FROM mailboxes WHERE domain_id = $1 AND number = $2', [domainId, mailbox.number]);
        const existing = await tx.query('SELECT 1 FROM access_code_credentials WHERE mailbox_id = $1', [mailboxId]);
        // A code the user changed since the last seed is theirs: only a missing one is set.
        if (existing.length > 0) continue;
        const hash = await hasher.hash(mailbox.accessCode);
        await count(`INSERT INTO access_code_credentials (mailbox_id, hash) VALUES ($1, $2)
                     ON CONFLICT (mailbox_id) DO NOTHING`, [mailboxId, hash]);
      }
    }
    return { inserted };
  });
}

async function idOf(tx: Transaction, sql: string, params: unknown[]): Promise<number> {
  const rows = await tx.query<{ id: number }>(sql, params);
  const row = rows[0];
  if (!row) throw new Error(`demo seed: expected a row for ${sql}`);
  return row.id;
}
