// Open a complaint, answer it, propose a refund and approve it from TypeScript with plain JSON.
//
//   npm install @temporalio/client tsx
//   export REDRESS_CODEC=http://localhost:8081 TEMPORAL_CODEC_AUTH="Bearer <redress keys codec-token NAME>"
//   APPROVER_KEY=keys/wang.fang.pem npx tsx complaint.ts
//
// See docs/contract.md for every name used here, and docs/security.md for the codec server.
import { Client, Connection, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, type Payload, type PayloadCodec } from '@temporalio/common';
import { createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';

const TASK_QUEUE = process.env.REDRESS_TASK_QUEUE ?? 'redress';

// The canonical bytes an approver signs: sorted keys, no spaces, amount without trailing zeros,
// signed_at in whole UTC seconds. All values are ASCII.
function signedTerms(complaintId: string, proposalId: string, decision: 'approve' | 'reject', amount: string,
                     currency: string, approver: string, signedAt: string): string {
  const plainAmount = amount.includes('.') ? amount.replace(/0+$/, '').replace(/\.$/, '') : amount;
  return JSON.stringify({
    amount: plainAmount, approver, complaint_id: complaintId, currency, decision, proposal_id: proposalId,
    signed_at: signedAt,
  });
}

// Payloads are encrypted (personal data): this client holds no keys and asks Redress's codec server instead.
// Each payload is sealed for one workflow (the endpoint names it): a case refuses another case's payloads.
class RemoteCodec implements PayloadCodec {
  constructor(private readonly endpoint: string, private readonly auth: string) {}

  encode(payloads: Payload[]): Promise<Payload[]> { return this.call('encode', payloads); }

  decode(payloads: Payload[]): Promise<Payload[]> { return this.call('decode', payloads); }

  private async call(action: string, payloads: Payload[]): Promise<Payload[]> {
    const toJson = (p: Payload) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
      data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
    });
    const response = await fetch(`${this.endpoint}/${action}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: this.auth },
      body: JSON.stringify({ payloads: payloads.map(toJson) }),
    });
    if (!response.ok) throw new Error(`codec server ${action}: ${response.status} ${await response.text()}`);
    const body = (await response.json()) as { payloads?: { metadata?: Record<string, string>; data?: string }[] };
    return (body.payloads ?? []).map((p) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
      data: Buffer.from(p.data ?? '', 'base64'),
    }));
  }
}

async function main(): Promise<void> {
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS ?? 'localhost:7233' });
  // 1. Open the case. The complaint id is the workflow id, so a retry cannot open a second case.
  const complaintId = `TS-${Date.now()}`;
  const codec = process.env.REDRESS_CODEC ?? 'http://localhost:8081';
  const client = new Client({  // a client per case: its payloads are bound to complaint-<id>
    connection,
    namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
    dataConverter: { payloadCodecs: [new RemoteCodec(`${codec}/bind/complaint-${complaintId}`,
                                                     process.env.TEMPORAL_CODEC_AUTH ?? '')] },
  });

  const handle = await client.workflow.start('Complaint', {
    taskQueue: TASK_QUEUE,
    workflowId: `complaint-${complaintId}`,
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    workflowIdConflictPolicy: 'FAIL',
    args: [{
      complaint_id: complaintId,
      customer: { id: 'crm-7731', language: 'en', email: 'pat@example.com' },
      channel: 'web',
      received_at: new Date().toISOString(),
      text: 'I was charged twice for my order and want a refund.',
      order: { id: 'SO-88', value: '900.00', currency: 'CNY' },
    }],
  });

  // 2. Wait for triage and the acknowledgement, then read where the case stands.
  type Status = { stage: string; category?: string; queue?: string; severity?: string;
                  pending_approval?: { proposal_id: string; amount: string; currency: string } };
  let status: Status = await handle.query<Status>('status');
  while (['received', 'triaged'].includes(status.stage)) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    status = await handle.query<Status>('status');
  }
  console.log(`${complaintId}: ${status.category} / ${status.severity} / queue ${status.queue}`);

  // 3. Updates answer with the new state, or fail with type "Refused" and the reason.
  await handle.executeUpdate('record_response', { args: [{ agent: 'li.na', message: 'We are checking the charge.' }] });
  try {
    await handle.executeUpdate('customer_feedback', { args: [{ score: 5 }] });
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure
        && error.cause.type === 'Refused') {
      console.log(`refused as expected: ${error.cause.message}`);
    } else {
      throw error;
    }
  }
  const answer = await handle.executeUpdate<{ proposal_id: string; status: string; required_role?: string }, [object]>(
    'propose_remedy',
    { args: [{ kind: 'refund', amount: '800', currency: 'CNY', reason: 'charged twice', proposed_by: 'li.na' }] },
  );
  console.log(`proposal ${answer.proposal_id}: ${answer.status}, needs ${answer.required_role}`);

  // 4. Approve it, signed with the approver's Ed25519 key (the directory in rules/approval.yaml has the public half).
  const pending = (await handle.query<Status>('status')).pending_approval!;
  const signedAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const terms = signedTerms(complaintId, pending.proposal_id, 'approve', pending.amount, pending.currency,
                            'wang.fang', signedAt);
  const key = createPrivateKey(readFileSync(process.env.APPROVER_KEY ?? 'keys/wang.fang.pem'));
  const signature = sign(null, Buffer.from(terms), key).toString('base64');
  const record = await handle.executeUpdate<{ status: string; decided_by: string }, [object]>('approve_remedy', {
    args: [{ proposal_id: pending.proposal_id, approver: 'wang.fang', signed_at: signedAt, signature }],
  });
  console.log(`approved: ${record.status} by ${record.decided_by}`);
  await connection.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
