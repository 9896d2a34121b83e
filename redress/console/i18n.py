"""The console's words in English and Chinese, chosen by Accept-Language unless the person switched.

Only the console's own labels are translated; what people and the rules wrote
(timeline details, refusal reasons) is shown as written.
"""

from __future__ import annotations

LANGUAGES = ("en", "zh")

WORDS: dict[str, dict[str, str]] = {
    "inbox": {"en": "Inbox", "zh": "收件箱"},
    "cases": {"en": "Cases", "zh": "工单"},
    "crises": {"en": "Crises", "zh": "危机"},
    "report": {"en": "Report", "zh": "报表"},
    "sign_in": {"en": "Sign in", "zh": "登录"},
    "sign_out": {"en": "Sign out", "zh": "退出"},
    "signed_in_as": {"en": "Signed in as", "zh": "当前用户"},
    "sign_in_with_passkey": {"en": "Sign in with passkey", "zh": "用通行密钥登录"},
    "register_passkey": {"en": "Register a passkey", "zh": "注册通行密钥"},
    "no_passkey_yet": {"en": "no passkey yet", "zh": "尚无通行密钥"},
    "awaiting_my_decision": {"en": "Proposals awaiting my decision", "zh": "待我审批的补偿"},
    "my_cases": {"en": "My cases, soonest deadline first", "zh": "我的工单（按截止时间）"},
    "breached_in_my_queues": {"en": "Breached in my queues", "zh": "我队列中已超时的工单"},
    "nothing": {"en": "Nothing here.", "zh": "暂无。"},
    "case": {"en": "Case", "zh": "工单"},
    "amount": {"en": "Amount", "zh": "金额"},
    "proposer": {"en": "Proposed by", "zh": "提议人"},
    "age": {"en": "Waiting", "zh": "已等待"},
    "decide_by": {"en": "Decide by", "zh": "审批期限"},
    "approver_group": {"en": "Approver group", "zh": "会签组"},
    "correct_contact": {"en": "Correct contact details", "zh": "更正联系方式"},
    "correct_contact_note": {
        "en": "Only what changes; the old details become unreadable.",
        "zh": "只填需更正的项；旧的联系方式将无法再读取。",
    },
    "name": {"en": "Name", "zh": "姓名"},
    "phone": {"en": "Phone", "zh": "电话"},
    "email": {"en": "E-mail", "zh": "电子邮件"},
    "seat": {"en": "Seat", "zh": "席位"},
    "signed_by": {"en": "Signed by", "zh": "已签"},
    "can_sign": {"en": "Can sign", "zh": "可签"},
    "stage": {"en": "Stage", "zh": "阶段"},
    "severity": {"en": "Severity", "zh": "级别"},
    "queue": {"en": "Queue", "zh": "队列"},
    "category": {"en": "Category", "zh": "类别"},
    "assignee": {"en": "Assignee", "zh": "处理人"},
    "deadlines": {"en": "Deadlines", "zh": "时限"},
    "deadline": {"en": "Deadline", "zh": "时限"},
    "due": {"en": "Due", "zh": "截止"},
    "left": {"en": "Time left", "zh": "剩余时间"},
    "level": {"en": "Escalation level", "zh": "升级级别"},
    "met": {"en": "met", "zh": "已达成"},
    "breached": {"en": "breached", "zh": "已超时"},
    "paused": {"en": "paused: waiting for the customer", "zh": "已暂停：等待客户回复"},
    "timeline": {"en": "Timeline", "zh": "时间线"},
    "when": {"en": "When", "zh": "时间"},
    "who": {"en": "Who", "zh": "操作人"},
    "what": {"en": "What", "zh": "内容"},
    "verified": {"en": "verified signature", "zh": "签名已验证"},
    "decided_by": {"en": "Decided by", "zh": "审批人"},
    "complaint": {"en": "The complaint", "zh": "投诉内容"},
    "customer": {"en": "Customer", "zh": "客户"},
    "contact": {"en": "Contact", "zh": "联系方式"},
    "channel": {"en": "Channel", "zh": "渠道"},
    "received": {"en": "Received", "zh": "收到时间"},
    "order": {"en": "Order", "zh": "订单"},
    "asks_for": {"en": "Asks for", "zh": "诉求"},
    "role": {"en": "Role", "zh": "角色"},
    "applied_to": {"en": "Applied to", "zh": "已应用工单数"},
    "steps_fired": {"en": "Escalation steps done", "zh": "已执行的升级步骤"},
    "overdue": {"en": "overdue", "zh": "已逾期"},
    "offers": {"en": "Offers from the rules", "zh": "规则建议的补偿"},
    "remedies": {"en": "Remedies and payouts", "zh": "补偿与支付"},
    "transaction": {"en": "Transaction", "zh": "交易号"},
    "status": {"en": "Status", "zh": "状态"},
    "actions": {"en": "Actions", "zh": "操作"},
    "respond": {"en": "Respond", "zh": "回复"},
    "message": {"en": "Message to the customer (optional)", "zh": "发给客户的消息（可选）"},
    "ask_customer": {"en": "Ask the customer (pauses the clocks)", "zh": "询问客户（暂停计时）"},
    "question": {"en": "Question", "zh": "问题"},
    "propose": {"en": "Propose a remedy", "zh": "提议补偿"},
    "kind": {"en": "Kind", "zh": "类型"},
    "currency": {"en": "Currency", "zh": "币种"},
    "reason": {"en": "Reason", "zh": "原因"},
    "use_offer": {"en": "Use", "zh": "采用"},
    "approve": {"en": "Approve with passkey", "zh": "用通行密钥批准"},
    "reject": {"en": "Reject with passkey", "zh": "用通行密钥拒绝"},
    "you_sign": {"en": "Your passkey signs exactly", "zh": "您的通行密钥将签署"},
    "not_yours": {
        "en": "Your authority does not cover this proposal: it awaits",
        "zh": "您的权限不足以审批此提议，需由以下人员审批：",
    },
    "resolve": {"en": "Resolve", "zh": "解决"},
    "summary": {"en": "Summary", "zh": "摘要"},
    "root_cause": {"en": "Root cause", "zh": "根本原因"},
    "apology_by": {"en": "Apology from", "zh": "致歉人"},
    "evidence": {"en": "Evidence", "zh": "证据"},
    "claimant_flag": {"en": "Flagged for review", "zh": "待复核客户"},
    "add_evidence": {"en": "Add evidence", "zh": "添加证据"},
    "evidence_ref": {"en": "Where it is kept (URL)", "zh": "存放位置（URL）"},
    "evidence_file": {"en": "File (only its SHA-256 is sent)", "zh": "文件（仅发送其 SHA-256）"},
    "note": {"en": "Note", "zh": "备注"},
    "waits_for": {"en": "waits for", "zh": "等待"},
    "change_severity": {"en": "Change severity", "zh": "调整级别"},
    "withdraw": {"en": "Withdraw", "zh": "撤回"},
    "send": {"en": "Send", "zh": "提交"},
    "filter": {"en": "Filter", "zh": "筛选"},
    "any": {"en": "any", "zh": "全部"},
    "due_within": {"en": "Due within (e.g. 4h)", "zh": "截止于（如 4h）内"},
    "next_page": {"en": "Next page", "zh": "下一页"},
    "previous_page": {"en": "Previous page", "zh": "上一页"},
    "next_due": {"en": "Next deadline", "zh": "下一个时限"},
    "crisis": {"en": "Crisis", "zh": "危机"},
    "declared": {"en": "Declared", "zh": "宣布时间"},
    "linked": {"en": "Linked cases", "zh": "关联工单"},
    "common_remedy": {"en": "Common remedy", "zh": "统一补偿"},
    "approve_common": {"en": "Approve for every linked case", "zh": "为所有关联工单批准"},
    "window": {"en": "Since (e.g. 7d)", "zh": "起始（如 7d）"},
    "show": {"en": "Show", "zh": "显示"},
    "live": {"en": "updates live", "zh": "实时更新"},
    "signing": {"en": "Waiting for your passkey...", "zh": "等待通行密钥..."},
    "enroll_note": {
        "en": "Development console: anyone who reaches it may register a passkey for a person who has none.",
        "zh": "开发控制台：任何人都可为尚无通行密钥的人员注册。",
    },
    "entry_for_admin": {
        "en": "Give this entry to an admin for rules/approval.yaml (or they run the command):",
        "zh": "请将此条目交给管理员加入 rules/approval.yaml（或运行以下命令）：",
    },
}


def choose(accept_language: str | None, switched: str | None) -> str:
    """The person's switch if they made one, else the first of their browser's languages we have."""
    if switched in LANGUAGES:
        return switched
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()
        if code.startswith("zh"):
            return "zh"
        if code.startswith("en"):
            return "en"
    return "en"


def words(language: str) -> dict[str, str]:
    return {key: texts.get(language, texts["en"]) for key, texts in WORDS.items()}
