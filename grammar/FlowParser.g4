// FlowParser.g4: syntax of the Flow policy language (docs/language.md).
//
// Every decision is LL(1): a declaration is chosen by its keyword, a match
// item by a header keyword, `inner`, `any` or a template name, and a value by
// its first token. compiler/parse parses with SLL prediction and falls back to
// full LL only after a syntax error.
//
// `file` is the whole language. For memory, compiler/parse does not call it:
// it calls `declaration`, `portHeader` and `portItem` one at a time and frees
// each parse tree as soon as it has become AST, so no tree outlives one
// declaration or one rule (docs/architecture.md, "Parsing").
parser grammar FlowParser;

options { tokenVocab = FlowLexer; }

file : (declaration | portBlock)* EOF;

declaration
  : importDecl
  | targetDecl
  | constDecl
  | objectDecl
  | matchDecl
  ;

importDecl : IMPORT (modulePath | STRING) SEMI;
modulePath : ID (DOT ID)*;

targetDecl : TARGET ID SEMI;

constDecl : CONST ID EQUALS value SEMI;

objectDecl : objectKind ID (COMMA ID)* SEMI;
objectKind : QUEUE | COUNTER | HANDLE;

// A named, parameterized match fragment (a template).
matchDecl : MATCH ID paramList? EQUALS matchSpec SEMI;
paramList : LPAREN (ID (COMMA ID)*)? RPAREN;

portBlock  : portHeader portItem* RBRACE;
portHeader : direction PORT integer LBRACE;
direction  : INGRESS | EGRESS;

portItem
  : ruleDecl
  | defaultDecl
  | sniffDecl
  ;

ruleDecl    : RULE ID? ruleOption* COLON matchSpec ARROW actionList SEMI;
defaultDecl : DEFAULT MULTICAST? ruleOption* ARROW actionList SEMI;
sniffDecl   : SNIFF ruleOption* ARROW actionList SEMI;

ruleOption
  : PRIORITY integer     # priorityOption
  | PASS                 # passOption
  ;

matchSpec
  : ANY
  | matchItem (COMMA matchItem)*
  ;

matchItem
  : headerMatch
  | INNER LBRACE headerMatch (COMMA headerMatch)* RBRACE
  | ID argList?
  ;

headerMatch : header fieldMatch*;
header      : ETH | IPV4 | IPV6 | TCP | UDP | ESP | VXLAN | GRE | MPLS;
fieldMatch  : fieldName value;
// Field names are identifiers; some keywords are accepted here only so that
// `tcp port 80` gets "'tcp' has no field 'port'" from sema rather than a
// syntax error. Header names, `in` and `mask` are excluded because they would
// make the decision after a value ambiguous; action keywords because a
// missing '->' (`udp dst 53 steer q`) must be reported at the action; and the
// keywords that start a declaration or a rule because after a missing ';'
// (`match web = tcp dst 80` NEWLINE `queue q;`) they start the next one.
fieldName
  : ID | PORT | PRIORITY | PASS | MULTICAST | ANY
  ;

argList : LPAREN (value (COMMA value)*)? RPAREN;

// A value: one scalar with an optional prefix, range or mask; a set; or
// membership in a set.
value
  : scalar valueSuffix?
  | setLiteral
  | IN (setLiteral | ID)
  ;
valueSuffix
  : SLASH integer        # prefixSuffix
  | DOTDOT scalar        # rangeSuffix
  | MASK scalar          # maskSuffix
  ;
scalar : INT_LIT | HEX_LIT | IPV4_LIT | ADDR_LIT | ID;
integer : INT_LIT | HEX_LIT;

setLiteral : LBRACE (setElement (COMMA setElement)* COMMA?)? RBRACE;
setElement : scalar valueSuffix?;

actionList : action (COMMA action)*;
action
  : STEER ID             # steerAction
  | TAG scalar           # tagAction
  | DROP                 # dropAction
  | ALLOW                # allowAction
  | COUNT ID             # countAction
  | HANDLE ID            # handleAction
  ;
