// FlowLexer.g4: tokens of the Flow policy language (docs/language.md).
//
// The lexer is deliberately permissive about address literals: it accepts
// anything shaped like a MAC or an IPv6 address and compiler/base/value_parse
// validates it, so that a bad literal gets a precise diagnostic instead of a
// cascade of token errors. Error tokens (ERROR_CHAR, UNTERMINATED_*) are never
// seen by the parser: compiler/parse turns them into diagnostics.
lexer grammar FlowLexer;

// Keywords. Header and field names are not keywords except the header names,
// so field names such as `type` or `key` stay usable as identifiers.
IMPORT    : 'import';
TARGET    : 'target';
CONST     : 'const';
QUEUE     : 'queue';
COUNTER   : 'counter';
HANDLE    : 'handle';
MATCH     : 'match';
INGRESS   : 'ingress';
EGRESS    : 'egress';
PORT      : 'port';
RULE      : 'rule';
PRIORITY  : 'priority';
PASS      : 'pass';
DEFAULT   : 'default';
MULTICAST : 'multicast';
SNIFF     : 'sniff';
STEER     : 'steer';
TAG       : 'tag';
DROP      : 'drop';
ALLOW     : 'allow';
COUNT     : 'count';
IN        : 'in';
MASK      : 'mask';
INNER     : 'inner';
ANY       : 'any';

ETH   : 'eth';
IPV4  : 'ipv4';
IPV6  : 'ipv6';
TCP   : 'tcp';
UDP   : 'udp';
ESP   : 'esp';
VXLAN : 'vxlan';
GRE   : 'gre';
MPLS  : 'mpls';

// Punctuation.
ARROW    : '->';
DOTDOT   : '..';
DOT      : '.';
COMMA    : ',';
SEMI     : ';';
COLON    : ':';
EQUALS   : '=';
SLASH    : '/';
LBRACE   : '{';
RBRACE   : '}';
LPAREN   : '(';
RPAREN   : ')';

// Literals. IPV4_LIT must precede INT so that "10.1.0.0" is one token; the
// lexer backs off to INT for "1000..1999".
IPV4_LIT : DEC '.' DEC '.' DEC '.' DEC;
// MACs (six groups) and IPv6 addresses: at least three groups, or a "::".
// After a "::" anything made of groups and colons is one token, so that
// "1::2::3" is one bad literal ("more than one '::'"), not two tokens.
// "0:" (a priority followed by the rule colon) is therefore not an address.
// A group starts with a hex digit and runs over any letters after it, so that
// "44:5g" is one bad literal ("non-hex digit"), not an address and a name.
ADDR_LIT
  : GRP ':' GRP (':' GRP)+ ('.' DEC '.' DEC '.' DEC)?
  | (GRP (':' GRP)*)? '::' (GRP | ':')* ('.' DEC '.' DEC '.' DEC)?
  ;
HEX_LIT  : '0' [xX] HEXD+;
INT_LIT  : DEC;
STRING   : '"' (~["\\\r\n] | '\\' ~[\r\n])* '"';
ID       : [a-zA-Z_] [a-zA-Z0-9_]*;

fragment DEC  : [0-9]+;
fragment HEXD : [0-9a-fA-F];
fragment GRP  : HEXD [0-9a-zA-Z_]*;

// Trivia.
WS            : [ \t\r\n\f]+ -> skip;
LINE_COMMENT  : '//' ~[\r\n]* -> skip;
BLOCK_COMMENT : '/*' (~'*' | '*'+ ~[*/])* '*'+ '/' -> skip;

// Error tokens, reported by compiler/parse and removed from the stream.
UNTERMINATED_COMMENT : '/*' (~'*' | '*'+ ~[*/])* '*'* EOF;
UNTERMINATED_STRING  : '"' (~["\\\r\n] | '\\' ~[\r\n])* ('\\')?;
ERROR_CHAR           : .;
