// Parsing with the ANTLR-generated FlowParser, streamed one declaration or
// rule at a time (docs/architecture.md, "Parsing").
#include "compiler/parse/parse.h"

#include <memory>
#include <optional>

#include "FlowLexer.h"
#include "FlowParser.h"
#include "antlr4-runtime.h"
#include "compiler/base/value_parse.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/MemoryBuffer.h"

namespace flowc::parse {
namespace {

using flowc_grammar::FlowLexer;
using flowc_grammar::FlowParser;

/// A CharStream over the source bytes, so that token offsets are byte offsets
/// into the SourceMgr buffer and no UTF-32 copy of the file is made. Flow's
/// tokens are ASCII; other bytes only occur in comments and strings, which the
/// lexer passes through unchanged.
class ByteCharStream : public antlr4::CharStream {
public:
  ByteCharStream(llvm::StringRef data, std::string name) : data_(data), name_(std::move(name)) {}

  void consume() override {
    if (p_ < data_.size()) {
      ++p_;
    }
  }
  size_t LA(ssize_t i) override {
    if (i == 0) {
      return 0;
    }
    ssize_t at = i > 0 ? static_cast<ssize_t>(p_) + i - 1 : static_cast<ssize_t>(p_) + i;
    if (at < 0 || at >= static_cast<ssize_t>(data_.size())) {
      return antlr4::IntStream::EOF;
    }
    return static_cast<unsigned char>(data_[static_cast<size_t>(at)]);
  }
  ssize_t mark() override { return -1; }
  void release(ssize_t) override {}
  size_t index() override { return p_; }
  void seek(size_t index) override { p_ = std::min(index, data_.size()); }
  size_t size() override { return data_.size(); }
  std::string getSourceName() const override { return name_; }
  std::string getText(const antlr4::misc::Interval &interval) override {
    if (interval.a < 0 || interval.b < interval.a) {
      return "";
    }
    size_t a = static_cast<size_t>(interval.a);
    size_t b = std::min(static_cast<size_t>(interval.b), data_.size() - 1);
    return a >= data_.size() ? "" : data_.slice(a, b + 1).str();
  }
  std::string toString() const override { return data_.str(); }

private:
  llvm::StringRef data_;
  std::string name_;
  size_t p_ = 0;
};

/// Passes the lexer's tokens on, except the error tokens, which it reports
/// (runs of invalid characters as one diagnostic).
class TokenFilter : public antlr4::TokenSource {
public:
  TokenFilter(FlowLexer &lexer, ByteCharStream &chars, llvm::StringRef data, diag::Engine &diags)
      : lexer_(lexer), chars_(chars), data_(data), diags_(diags) {}

  std::unique_ptr<antlr4::Token> nextToken() override {
    for (;;) {
      std::unique_ptr<antlr4::Token> t;
      if (pending_) {
        t = std::move(pending_);
      } else {
        SkipTrivia();
        t = lexer_.nextToken();
      }
      switch (t->getType()) {
      case FlowLexer::ERROR_CHAR: {
        size_t begin = t->getStartIndex();
        size_t end = t->getStopIndex() + 1;
        for (;;) {
          pending_ = lexer_.nextToken();
          if (pending_->getType() != FlowLexer::ERROR_CHAR || pending_->getStartIndex() != end) {
            break;
          }
          end = pending_->getStopIndex() + 1;
        }
        llvm::StringRef text = data_.slice(begin, end);
        std::string shown = DescribeInvalid(text);
        after_invalid_ = pending_->getStartIndex();
        diags_.Report(diag::Kind::kInvalidCharacter, Loc(begin), shown)
            .Range(llvm::SMRange(Loc(begin), Loc(end)));
        continue;
      }
      case FlowLexer::UNTERMINATED_COMMENT:
        diags_.Report(diag::Kind::kUnterminatedComment, Loc(t->getStartIndex()),
                      "unterminated '/*' comment")
            .Range(llvm::SMRange(Loc(t->getStartIndex()), Loc(t->getStartIndex() + 2)));
        continue;
      case FlowLexer::UNTERMINATED_STRING:
        diags_.Report(diag::Kind::kUnterminatedString, Loc(t->getStartIndex()),
                      "missing terminating '\"' character");
        continue;
      default: {
        ends_[returned_ % kRecent] = {returned_, t->getStopIndex() + 1, depth_};
        ++returned_;
        size_t type = t->getType();
        if (type == FlowLexer::LBRACE || type == FlowLexer::LPAREN) {
          ++depth_;
        } else if (type == FlowLexer::RBRACE || type == FlowLexer::RPAREN) {
          --depth_;
        }
        return t;
      }
      }
    }
  }

  /// The offset of the token right after the last run of invalid
  /// characters: a syntax error there is a consequence, not news.
  size_t after_invalid() const { return after_invalid_; }

  /// The message for a run of characters no token can start with.
  static std::string DescribeInvalid(llvm::StringRef text) {
    // Typographic look-alikes pasted from documents.
    static const std::pair<llvm::StringRef, llvm::StringRef> kLookAlikes[] = {
        {"\u2192", "->"}, {"\u201c", "\""}, {"\u201d", "\""}, {"\u2018", "'"},
        {"\u2019", "'"},  {"\u2013", "-"},  {"\u2014", "-"},  {"\u00a0", ""}};
    for (auto [bad, good] : kLookAlikes) {
      if (text == bad) {
        if (good.empty()) {
          return "invalid character U+00A0 (no-break space); did you mean a space?";
        }
        return "invalid character '" + text.str() + "'; did you mean '" + good.str() + "'?";
      }
    }
    bool one_code_point = !text.empty() &&
                          (static_cast<unsigned char>(text[0]) < 0x80
                               ? text.size() == 1
                               : llvm::count_if(text.drop_front(), [](char c) {
                                   return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
                                 }) == 0);
    if (one_code_point && (static_cast<unsigned char>(text[0]) >= 0x80 || llvm::isPrint(text[0]))) {
      return "invalid character '" + text.str() + "'";
    }
    return "invalid characters in the source text";
  }

  /// The bracket depth before the token with stream index `index` (counted
  /// over the whole file), if it is recent.
  std::optional<long> DepthBefore(size_t index) const {
    const Recent &r = ends_[index % kRecent];
    if (r.index != index) {
      return std::nullopt;
    }
    return r.depth;
  }

  /// The end offset of the token with stream index `index`, if it is recent.
  std::optional<size_t> EndOf(size_t index) const {
    const Recent &r = ends_[index % kRecent];
    if (r.index != index) {
      return std::nullopt;
    }
    return r.end;
  }
  size_t getLine() const override { return lexer_.getLine(); }
  size_t getCharPositionInLine() override { return lexer_.getCharPositionInLine(); }
  antlr4::CharStream *getInputStream() override { return lexer_.getInputStream(); }
  std::string getSourceName() override { return lexer_.getSourceName(); }
  antlr4::TokenFactory<antlr4::CommonToken> *getTokenFactory() override {
    return lexer_.getTokenFactory();
  }

private:
  /// Skips whitespace and line comments before the lexer sees them: the
  /// lexer would make (and then drop) a token for each, through ANTLR's
  /// action executor, which costs more than lexing the real tokens. Token
  /// positions are byte offsets, so the lexer's line count is never used.
  void SkipTrivia() {
    size_t p = chars_.index();
    const size_t n = data_.size();
    for (;;) {
      while (p < n && (data_[p] == ' ' || data_[p] == '\t' || data_[p] == '\n' ||
                       data_[p] == '\r' || data_[p] == '\f')) {
        ++p;
      }
      if (p + 1 < n && data_[p] == '/' && data_[p + 1] == '/') {
        while (p < n && data_[p] != '\n' && data_[p] != '\r') {
          ++p;
        }
        continue;
      }
      break;
    }
    chars_.seek(p);
  }

  llvm::SMLoc Loc(size_t offset) {
    return llvm::SMLoc::getFromPointer(data_.data() + std::min(offset, data_.size()));
  }

  FlowLexer &lexer_;
  ByteCharStream &chars_;
  llvm::StringRef data_;
  diag::Engine &diags_;
  std::unique_ptr<antlr4::Token> pending_;
  // End offsets of the last tokens handed out, to place "expected ';'" after
  // the previous token (UnbufferedTokenStream frees consumed tokens).
  struct Recent {
    size_t index = SIZE_MAX;
    size_t end = 0;
    long depth = 0;
  };
  static constexpr size_t kRecent = 4096;
  std::vector<Recent> ends_ = std::vector<Recent>(kRecent);
  size_t returned_ = 0;
  long depth_ = 0;
  size_t after_invalid_ = SIZE_MAX;
};

/// What the first syntax error of one declaration was.
struct SyntaxErrorInfo {
  bool set = false;
  /// A ';' missing at the end of a line was supplied: the construct parsed
  /// and is kept, and only the missing ';' is reported.
  bool recovered = false;
  size_t token_type = 0;
  size_t start = 0;
  size_t stop = 0;
  size_t previous_end = 0;
  bool has_previous = false;
  antlr4::misc::IntervalSet expected;
};

/// Stops the parse at the first syntax error and records it; recovery is done
/// by the streaming loop, which resynchronizes at the next declaration or rule.
class FirstErrorStrategy : public antlr4::DefaultErrorStrategy {
public:
  FirstErrorStrategy(const TokenFilter &tokens, llvm::StringRef data)
      : tokens_(tokens), data_(data) {}
  SyntaxErrorInfo info;
  bool record_loops = false;

  void reportError(antlr4::Parser *parser, const antlr4::RecognitionException &e) override {
    if (info.set) {
      return;
    }
    info.set = true;
    antlr4::Token *t = e.getOffendingToken();
    if (t == nullptr) {
      t = parser->getCurrentToken();
    }
    info.token_type = t->getType();
    info.start = t->getStartIndex();
    info.stop = t->getStopIndex();
    info.expected = e.getExpectedTokens();
    if (t->getTokenIndex() == loop_token_) {
      // The loop just left could also have gone on: `queue a b` wants ','
      // as much as ';'.
      info.expected.addAll(loop_expected_);
    }
    if (t->getTokenIndex() > 0 && t->getTokenIndex() != SIZE_MAX) {
      if (std::optional<size_t> end = tokens_.EndOf(t->getTokenIndex() - 1)) {
        info.has_previous = true;
        info.previous_end = *end;
      }
    }
  }
  void recover(antlr4::Parser *, std::exception_ptr) override {
    throw antlr4::ParseCancellationException();
  }
  antlr4::Token *recoverInline(antlr4::Parser *parser) override {
    antlr4::Token *t = parser->getCurrentToken();
    if (!info.set && parser->getExpectedTokens().contains(static_cast<size_t>(FlowLexer::SEMI)) &&
        AtLineStart(t)) {
      // `queue a, b` then a new line: the declaration is complete but for
      // its ';'. Keep it, so its names do not cascade into "undefined name".
      antlr4::InputMismatchException e(parser);
      reportError(parser, e);
      info.recovered = true;
      return getMissingSymbol(parser);
    }
    throw antlr4::InputMismatchException(parser);
  }
  /// Instead of ANTLR's in-loop recovery: where a `( ... )*` loop is left
  /// at a token that neither continues it nor follows it, remember what the
  /// loop would have taken, for the message of the error that follows.
  /// Only on the LL pass that follows a syntax error: the fast SLL pass
  /// does not pay for it.
  void sync(antlr4::Parser *parser) override {
    if (!record_loops || info.set) {
      return;
    }
    const antlr4::atn::ATN &atn = parser->getATN();
    antlr4::atn::ATNState *s = atn.states[parser->getState()];
    auto type = s->getStateType();
    if (type != antlr4::atn::ATNState::STAR_LOOP_ENTRY &&
        type != antlr4::atn::ATNState::STAR_LOOP_BACK &&
        type != antlr4::atn::ATNState::PLUS_LOOP_BACK) {
      return;
    }
    size_t la = parser->getTokenStream()->LA(1);
    const antlr4::misc::IntervalSet &next = atn.nextTokens(s);
    if (next.contains(antlr4::Token::EPSILON) || next.contains(la)) {
      return;
    }
    loop_expected_ = next;
    loop_token_ = parser->getCurrentToken()->getTokenIndex();
  }
  void reset(antlr4::Parser *parser) override {
    DefaultErrorStrategy::reset(parser);
    loop_token_ = SIZE_MAX;
  }

private:
  antlr4::misc::IntervalSet loop_expected_;
  size_t loop_token_ = SIZE_MAX;

  /// True if a line break separates `t` from the token before it.
  bool AtLineStart(antlr4::Token *t) const {
    if (t->getType() == antlr4::Token::EOF || t->getTokenIndex() == 0 ||
        t->getTokenIndex() == SIZE_MAX) {
      return t->getType() == antlr4::Token::EOF;
    }
    std::optional<size_t> end = tokens_.EndOf(t->getTokenIndex() - 1);
    if (!end || *end > t->getStartIndex()) {
      return false;
    }
    llvm::StringRef between = data_.slice(*end, t->getStartIndex());
    return between.find_first_of("\n\r") != llvm::StringRef::npos;
  }

  const TokenFilter &tokens_;
  llvm::StringRef data_;
};

/// Describes the set of expected tokens in words, grouping families.
std::string DescribeExpected(const antlr4::misc::IntervalSet &expected,
                             const antlr4::dfa::Vocabulary &vocab) {
  struct Group {
    std::vector<size_t> members;
    const char *words;
  };
  const Group groups[] = {
      // The `declaration` rule; port blocks are dispatched before it.
      {{FlowLexer::IMPORT, FlowLexer::TARGET, FlowLexer::CONST, FlowLexer::QUEUE,
        FlowLexer::COUNTER, FlowLexer::HANDLE, FlowLexer::MATCH},
       "a declaration"},
      {{FlowLexer::ETH, FlowLexer::IPV4, FlowLexer::IPV6, FlowLexer::TCP, FlowLexer::UDP,
        FlowLexer::ESP, FlowLexer::VXLAN, FlowLexer::GRE, FlowLexer::MPLS},
       "a header"},
      {{FlowLexer::STEER, FlowLexer::TAG, FlowLexer::DROP, FlowLexer::ALLOW, FlowLexer::COUNT,
        FlowLexer::HANDLE},
       "an action"},
      {{FlowLexer::INT_LIT, FlowLexer::HEX_LIT, FlowLexer::IPV4_LIT, FlowLexer::ADDR_LIT,
        FlowLexer::ID},
       "a value"},
      {{FlowLexer::RULE, FlowLexer::DEFAULT, FlowLexer::SNIFF}, "a rule"},
  };
  antlr4::misc::IntervalSet rest = expected;
  std::vector<std::string> words;
  for (const Group &g : groups) {
    bool all = true;
    for (size_t t : g.members) {
      all = all && rest.contains(t);
    }
    if (!all) {
      continue;
    }
    for (size_t t : g.members) {
      rest.remove(t);
    }
    words.push_back(g.words);
  }
  for (ssize_t t : rest.toList()) {
    switch (t) {
    case FlowLexer::ID:
      words.push_back("a name");
      break;
    case FlowLexer::INT_LIT:
    case FlowLexer::HEX_LIT:
      words.push_back("an integer");
      break;
    case FlowLexer::IPV4_LIT:
      words.push_back("an IPv4 address");
      break;
    case FlowLexer::ADDR_LIT:
      words.push_back("a MAC or IPv6 address");
      break;
    case FlowLexer::STRING:
      words.push_back("a string");
      break;
    case static_cast<ssize_t>(antlr4::Token::EOF):
      words.push_back("end of file");
      break;
    default:
      words.push_back(vocab.getLiteralName(static_cast<size_t>(t)));
      break;
    }
  }
  // Integers listed twice (INT and HEX) collapse.
  words.erase(std::unique(words.begin(), words.end()), words.end());
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) {
      out += i + 1 == words.size() ? " or " : ", ";
    }
    out += words[i];
  }
  return out.empty() ? "something else" : out;
}

/// Builds AST nodes from parse-tree contexts and parses literals.
class Streamer {
public:
  Streamer(unsigned buffer_id, diag::Engine &diags, const Options &options, Stats &stats)
      : diags_(diags), options_(options), stats_(stats),
        data_(diags.sources().getMemoryBuffer(buffer_id)->getBuffer()),
        chars_(data_, diags.sources().getMemoryBuffer(buffer_id)->getBufferIdentifier().str()),
        lexer_(&chars_), filter_(lexer_, chars_, data_, diags), tokens_(&filter_), parser_(&tokens_) {
    lexer_.removeErrorListeners();
    parser_.removeErrorListeners();
    strategy_ = std::make_shared<FirstErrorStrategy>(filter_, data_);
    parser_.setErrorHandler(strategy_);
    module_.buffer_id = buffer_id;
    module_.path = chars_.getSourceName();
  }

  ast::Module Run() {
    while (!diags_.ShouldStop()) {
      size_t la = tokens_.LA(1);
      if (la == antlr4::Token::EOF) {
        break;
      }
      if (la == FlowLexer::INGRESS || la == FlowLexer::EGRESS) {
        PortBlockLoop();
        continue;
      }
      if (la == FlowLexer::RBRACE) {
        Error(tokens_.LT(1), "unexpected '}' outside a port block");
        tokens_.consume();
        continue;
      }
      ParseOne(
          [&] { return parser_.declaration(); },
          [&](FlowParser::DeclarationContext *ctx) { BuildDeclaration(ctx); }, /*in_block=*/false);
    }
    return std::move(module_);
  }

private:
  // --- Streaming and recovery ---------------------------------------------

  /// Parses one construct with `rule`: SLL first, LL after a syntax error;
  /// on a real error reports it and skips to the next construct.
  template <typename RuleFn, typename BuildFn>
  bool ParseOne(RuleFn rule, BuildFn build, bool in_block) {
    ssize_t marker = tokens_.mark();
    size_t start = tokens_.index();
    size_t start_offset = tokens_.LT(1)->getStartIndex();
    bool ok = TryParse(rule, build, options_.force_ll ? antlr4::atn::PredictionMode::LL
                                                       : antlr4::atn::PredictionMode::SLL);
    if (!ok && !options_.force_ll) {
      ++stats_.ll_fallbacks;
      tokens_.seek(start);
      ok = TryParse(rule, build, antlr4::atn::PredictionMode::LL);
    }
    tokens_.release(marker);
    if (ok) {
      if (strategy_->info.recovered) {
        ReportSyntaxError();
      }
      return true;
    }
    // Failing at the construct's first token: what the streaming loop accepts
    // there is expected too.
    if (strategy_->info.set && strategy_->info.start == start_offset) {
      if (in_block) {
        strategy_->info.expected.add(FlowLexer::RBRACE);
      } else {
        strategy_->info.expected.add(FlowLexer::INGRESS);
        strategy_->info.expected.add(FlowLexer::EGRESS);
      }
    }
    ReportSyntaxError();
    if (tokens_.index() == start && tokens_.LA(1) != antlr4::Token::EOF) {
      tokens_.consume();
    }
    Resync(in_block, start);
    return false;
  }

  template <typename RuleFn, typename BuildFn>
  bool TryParse(RuleFn rule, BuildFn build, antlr4::atn::PredictionMode mode) {
    parser_.getInterpreter<antlr4::atn::ParserATNSimulator>()->setPredictionMode(mode);
    strategy_->info = SyntaxErrorInfo();
    strategy_->reset(&parser_);
    strategy_->record_loops = mode == antlr4::atn::PredictionMode::LL;
    bool ok = false;
    try {
      auto *ctx = rule();
      ok = !strategy_->info.set || strategy_->info.recovered;
      if (ok) {
        build(ctx);
      }
    } catch (antlr4::ParseCancellationException &) {
      ok = false;
    } catch (antlr4::RecognitionException &) {
      ok = false;
    }
    // No parse tree outlives the construct it describes.
    parser_.getTreeTracker().reset();
    return ok;
  }

  void ReportSyntaxError() {
    const SyntaxErrorInfo &info = strategy_->info;
    if (!info.set) {
      return;
    }
    if (info.start == filter_.after_invalid()) {
      // The invalid character just reported is the cause (`→` for `->`).
      last_error_at_ = info.start;
      return;
    }
    std::string expected = DescribeExpected(info.expected, parser_.getVocabulary());
    std::string found = info.token_type == antlr4::Token::EOF
                            ? "end of file"
                            : "'" + Clip(data_.slice(info.start, info.stop + 1)) + "'";
    // A missing ';' is reported right after the previous token, like clang.
    bool wants_semi = info.expected.contains(static_cast<size_t>(FlowLexer::SEMI));
    if (wants_semi && info.has_previous && info.token_type != FlowLexer::SEMI &&
        LineOf(info.previous_end) != LineOf(info.start)) {
      // At a line end, the ';' is what is missing, not another list item.
      diags_.Report(diag::Kind::kSyntaxError, Loc(info.previous_end),
                    "expected ';' before " + found);
      last_error_at_ = info.start;
      return;
    }
    llvm::SMLoc begin = Loc(info.start);
    auto d = diags_.Report(diag::Kind::kSyntaxError, begin, "expected " + expected + ", found " + found);
    if (info.token_type != antlr4::Token::EOF) {
      d.Range(llvm::SMRange(begin, Loc(info.stop + 1)));
    }
    last_error_at_ = info.start;
  }

  /// Skips tokens to the end of the broken construct: past a ';' or before a
  /// '}' or the keyword that starts the next construct, at bracket depth 0.
  void Resync(bool in_block, size_t start) {
    // Brackets opened since the construct began (a set's '{' before an error
    // inside the set) must close before a '}' can end the block.
    long depth = 0;
    std::optional<long> at_start = filter_.DepthBefore(start);
    std::optional<long> now = filter_.DepthBefore(tokens_.index());
    if (at_start && now && *now > *at_start) {
      depth = *now - *at_start;
    }
    for (;;) {
      size_t la = tokens_.LA(1);
      if (la == antlr4::Token::EOF) {
        return;
      }
      if (depth == 0) {
        if (la == FlowLexer::SEMI) {
          tokens_.consume();
          return;
        }
        if (la == FlowLexer::RBRACE && in_block) {
          return;
        }
        if (StartsDeclaration(la) || (in_block ? StartsRule(la) : la == FlowLexer::HANDLE)) {
          return;
        }
      }
      if (la == FlowLexer::LBRACE || la == FlowLexer::LPAREN) {
        ++depth;
      } else if ((la == FlowLexer::RBRACE || la == FlowLexer::RPAREN) && depth > 0) {
        --depth;
      }
      tokens_.consume();
    }
  }

  /// Keywords that can only start a top-level declaration (`handle` also
  /// names an action, so it ends a block's broken rule only at top level).
  static bool StartsDeclaration(size_t t) {
    return t == FlowLexer::IMPORT || t == FlowLexer::TARGET || t == FlowLexer::CONST ||
           t == FlowLexer::QUEUE || t == FlowLexer::COUNTER || t == FlowLexer::MATCH ||
           t == FlowLexer::INGRESS || t == FlowLexer::EGRESS;
  }
  static bool StartsRule(size_t t) {
    return t == FlowLexer::RULE || t == FlowLexer::DEFAULT || t == FlowLexer::SNIFF;
  }

  void PortBlockLoop() {
    bool opened = ParseOne(
        [&] { return parser_.portHeader(); },
        [&](FlowParser::PortHeaderContext *ctx) { BuildPortHeader(ctx); }, /*in_block=*/false);
    if (!opened) {
      // The header was broken: skip the block's body as a unit if one follows.
      if (tokens_.LA(1) == FlowLexer::LBRACE) {
        SkipBalanced();
      }
      return;
    }
    uint32_t block = static_cast<uint32_t>(module_.port_blocks.size() - 1);
    for (;;) {
      if (diags_.ShouldStop()) {
        return;
      }
      size_t la = tokens_.LA(1);
      if (la == FlowLexer::RBRACE) {
        antlr4::Token *t = tokens_.LT(1);
        module_.port_blocks[block].range.End = Loc(t->getStopIndex() + 1);
        tokens_.consume();
        return;
      }
      // At the start of a block item `handle` can only be a declaration.
      if (la == antlr4::Token::EOF || StartsDeclaration(la) || la == FlowLexer::HANDLE) {
        size_t at = la == antlr4::Token::EOF ? data_.size() : tokens_.LT(1)->getStartIndex();
        if (last_error_at_ != at) {
          diags_.Report(diag::Kind::kUnclosedBrace, Loc(at),
                        la == antlr4::Token::EOF ? "expected '}' at end of file"
                                                 : "expected '}' before the next declaration")
              .AddNote(block_lbrace_, "to match this '{'");
        }
        return;
      }
      ParseOne(
          [&] { return parser_.portItem(); },
          [&](FlowParser::PortItemContext *ctx) { BuildPortItem(ctx, block); }, /*in_block=*/true);
    }
  }

  void SkipBalanced() {
    int depth = 0;
    do {
      size_t la = tokens_.LA(1);
      if (la == antlr4::Token::EOF) {
        return;
      }
      depth += la == FlowLexer::LBRACE ? 1 : la == FlowLexer::RBRACE ? -1 : 0;
      tokens_.consume();
    } while (depth > 0);
  }

  // --- Locations ------------------------------------------------------------

  llvm::SMLoc Loc(size_t offset) const {
    return llvm::SMLoc::getFromPointer(data_.data() + std::min(offset, data_.size()));
  }
  llvm::SMRange Range(antlr4::Token *t) const {
    return llvm::SMRange(Loc(t->getStartIndex()), Loc(t->getStopIndex() + 1));
  }
  llvm::SMRange Range(antlr4::tree::TerminalNode *n) const { return Range(n->getSymbol()); }
  llvm::SMRange Range(antlr4::ParserRuleContext *ctx) const {
    antlr4::Token *stop = ctx->getStop() != nullptr ? ctx->getStop() : ctx->getStart();
    return llvm::SMRange(Loc(ctx->getStart()->getStartIndex()), Loc(stop->getStopIndex() + 1));
  }
  llvm::StringRef Text(antlr4::Token *t) const {
    return data_.slice(t->getStartIndex(), t->getStopIndex() + 1);
  }
  llvm::StringRef Text(antlr4::tree::TerminalNode *n) const { return Text(n->getSymbol()); }
  unsigned LineOf(size_t offset) const {
    return diags_.sources().getLineAndColumn(Loc(offset)).first;
  }
  static std::string Clip(llvm::StringRef s) {
    return s.size() > 40 ? (s.take_front(37) + "...").str() : s.str();
  }

  void Error(antlr4::Token *t, const llvm::Twine &message) {
    diags_.Report(diag::Kind::kSyntaxError, Loc(t->getStartIndex()), message).Range(Range(t));
  }

  // --- AST building -----------------------------------------------------------

  ast::Name MakeName(antlr4::tree::TerminalNode *n) const { return {Text(n), Range(n)}; }

  void BuildDeclaration(FlowParser::DeclarationContext *ctx) {
    ++stats_.declarations;
    if (auto *c = ctx->importDecl()) {
      ast::ImportDecl d;
      d.range = Range(c);
      if (c->STRING() != nullptr) {
        d.is_module = false;
        llvm::StringRef s = Text(c->STRING());
        d.path = UnescapeString(s.drop_front().drop_back());
        d.path_range = Range(c->STRING());
      } else {
        d.path = Text(c->modulePath()->getStart()).str();
        d.path = data_
                     .slice(c->modulePath()->getStart()->getStartIndex(),
                            c->modulePath()->getStop()->getStopIndex() + 1)
                     .str();
        d.path_range = Range(c->modulePath());
      }
      Append(ast::DeclKind::kImport, module_.imports, std::move(d));
    } else if (auto *c = ctx->targetDecl()) {
      Append(ast::DeclKind::kTarget, module_.targets,
             ast::TargetDecl{Range(c), Text(c->ID()), Range(c->ID())});
    } else if (auto *c = ctx->constDecl()) {
      ast::ConstDecl d;
      d.range = Range(c);
      d.name = Text(c->ID());
      d.name_range = Range(c->ID());
      d.value = BuildValue(c->value());
      Append(ast::DeclKind::kConst, module_.consts, std::move(d));
    } else if (auto *c = ctx->objectDecl()) {
      ast::ObjectDecl d;
      d.range = Range(c);
      size_t kw = c->objectKind()->getStart()->getType();
      d.kind = kw == FlowLexer::QUEUE     ? ast::ObjectKind::kQueue
               : kw == FlowLexer::COUNTER ? ast::ObjectKind::kCounter
                                          : ast::ObjectKind::kHandle;
      for (auto *id : c->ID()) {
        d.names.push_back(MakeName(id));
      }
      Append(ast::DeclKind::kObject, module_.objects, std::move(d));
    } else if (auto *c = ctx->matchDecl()) {
      ast::MatchDecl d;
      d.range = Range(c);
      d.name = Text(c->ID());
      d.name_range = Range(c->ID());
      if (auto *params = c->paramList()) {
        d.has_params = true;
        for (auto *id : params->ID()) {
          d.params.push_back(MakeName(id));
        }
      }
      d.spec = BuildMatchSpec(c->matchSpec());
      Append(ast::DeclKind::kMatch, module_.templates, std::move(d));
    }
  }

  template <typename T> void Append(ast::DeclKind kind, std::vector<T> &into, T decl) {
    module_.order.emplace_back(kind, static_cast<uint32_t>(into.size()));
    into.push_back(std::move(decl));
  }

  static std::string UnescapeString(llvm::StringRef s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 1 < s.size()) {
        ++i;
      }
      out.push_back(s[i]);
    }
    return out;
  }

  void BuildPortHeader(FlowParser::PortHeaderContext *ctx) {
    ast::PortBlock b;
    b.direction = ctx->direction()->INGRESS() != nullptr ? ast::Direction::kIngress
                                                        : ast::Direction::kEgress;
    b.range = Range(ctx);
    b.port_range = Range(ctx->integer());
    std::optional<uint64_t> port = ParseIntToken(ctx->integer()->getStart());
    b.port = port.value_or(0);
    b.port_valid = port.has_value();
    block_lbrace_ = Loc(ctx->LBRACE()->getSymbol()->getStartIndex());
    Append(ast::DeclKind::kPortBlock, module_.port_blocks, std::move(b));
  }

  void BuildPortItem(FlowParser::PortItemContext *ctx, uint32_t block) {
    ++stats_.rules;
    ast::Rule r;
    r.range = Range(ctx);
    std::vector<FlowParser::RuleOptionContext *> options;
    FlowParser::ActionListContext *actions = nullptr;
    if (auto *c = ctx->ruleDecl()) {
      r.kind = ast::RuleKind::kNormal;
      r.keyword_range = Range(c->RULE());
      if (c->ID() != nullptr) {
        r.name = Text(c->ID());
        r.name_range = Range(c->ID());
      }
      options = c->ruleOption();
      r.match = BuildMatchSpec(c->matchSpec());
      actions = c->actionList();
    } else if (auto *c = ctx->defaultDecl()) {
      r.kind = c->MULTICAST() != nullptr ? ast::RuleKind::kMulticastDefault
                                         : ast::RuleKind::kDefault;
      r.keyword_range = llvm::SMRange(
          Range(c->DEFAULT()).Start,
          Range(c->MULTICAST() != nullptr ? c->MULTICAST() : c->DEFAULT()).End);
      options = c->ruleOption();
      actions = c->actionList();
    } else if (auto *c = ctx->sniffDecl()) {
      r.kind = ast::RuleKind::kSniffer;
      r.keyword_range = Range(c->SNIFF());
      options = c->ruleOption();
      actions = c->actionList();
    }
    for (auto *o : options) {
      if (auto *p = dynamic_cast<FlowParser::PriorityOptionContext *>(o)) {
        if (r.has_priority) {
          diags_.Report(diag::Kind::kInvalidRuleOption, Range(p).Start,
                        "'priority' is given twice for one rule")
              .Range(Range(p))
              .AddNote(r.priority_range.Start, "first 'priority' is here", r.priority_range);
          continue;
        }
        r.has_priority = true;
        std::optional<uint64_t> priority = ParseIntToken(p->integer()->getStart());
        r.priority = priority.value_or(0);
        r.priority_valid = priority.has_value();
        r.priority_range = Range(p);
      } else {
        if (r.pass) {
          diags_.Report(diag::Kind::kInvalidRuleOption, Range(o).Start,
                        "'pass' is given twice for one rule")
              .Range(Range(o))
              .AddNote(r.pass_range.Start, "first 'pass' is here", r.pass_range);
          continue;
        }
        r.pass = true;
        r.pass_range = Range(o);
      }
    }
    for (auto *a : actions->action()) {
      r.actions.push_back(BuildAction(a));
    }
    module_.port_blocks[block].rules.push_back(std::move(r));
  }

  ast::Action BuildAction(FlowParser::ActionContext *ctx) {
    ast::Action a;
    a.range = Range(ctx);
    antlr4::tree::TerminalNode *name = nullptr;
    if (auto *c = dynamic_cast<FlowParser::SteerActionContext *>(ctx)) {
      a.kind = ast::ActionKind::kSteer;
      name = c->ID();
    } else if (auto *c = dynamic_cast<FlowParser::TagActionContext *>(ctx)) {
      a.kind = ast::ActionKind::kTag;
      a.tag = BuildScalar(c->scalar());
    } else if (dynamic_cast<FlowParser::DropActionContext *>(ctx) != nullptr) {
      a.kind = ast::ActionKind::kDrop;
    } else if (dynamic_cast<FlowParser::AllowActionContext *>(ctx) != nullptr) {
      a.kind = ast::ActionKind::kAllow;
    } else if (auto *c = dynamic_cast<FlowParser::CountActionContext *>(ctx)) {
      a.kind = ast::ActionKind::kCount;
      name = c->ID();
    } else if (auto *c = dynamic_cast<FlowParser::HandleActionContext *>(ctx)) {
      a.kind = ast::ActionKind::kHandle;
      name = c->ID();
    }
    if (name != nullptr) {
      a.name = Text(name);
      a.name_range = Range(name);
    }
    return a;
  }

  ast::MatchSpec BuildMatchSpec(FlowParser::MatchSpecContext *ctx) {
    ast::MatchSpec spec;
    spec.range = Range(ctx);
    if (ctx->ANY() != nullptr) {
      spec.any = true;
      return spec;
    }
    for (auto *item : ctx->matchItem()) {
      ast::MatchItem m;
      m.range = Range(item);
      if (item->INNER() != nullptr) {
        m.kind = ast::MatchItemKind::kInner;
        for (auto *h : item->headerMatch()) {
          m.headers.push_back(BuildHeader(h));
        }
      } else if (item->ID() != nullptr) {
        m.kind = ast::MatchItemKind::kTemplate;
        m.template_name = Text(item->ID());
        m.name_range = Range(item->ID());
        if (auto *args = item->argList()) {
          m.has_args = true;
          for (auto *v : args->value()) {
            m.args.push_back(BuildValue(v));
          }
        }
      } else {
        m.kind = ast::MatchItemKind::kHeader;
        m.headers.push_back(BuildHeader(item->headerMatch(0)));
      }
      spec.items.push_back(std::move(m));
    }
    return spec;
  }

  ast::HeaderMatch BuildHeader(FlowParser::HeaderMatchContext *ctx) {
    ast::HeaderMatch h;
    h.range = Range(ctx);
    switch (ctx->header()->getStart()->getType()) {
    case FlowLexer::ETH:
      h.header = Header::kEth;
      break;
    case FlowLexer::IPV4:
      h.header = Header::kIpv4;
      break;
    case FlowLexer::IPV6:
      h.header = Header::kIpv6;
      break;
    case FlowLexer::TCP:
      h.header = Header::kTcp;
      break;
    case FlowLexer::UDP:
      h.header = Header::kUdp;
      break;
    case FlowLexer::ESP:
      h.header = Header::kEsp;
      break;
    case FlowLexer::VXLAN:
      h.header = Header::kVxlan;
      break;
    case FlowLexer::GRE:
      h.header = Header::kGre;
      break;
    default:
      h.header = Header::kMpls;
      break;
    }
    for (auto *f : ctx->fieldMatch()) {
      antlr4::Token *name = f->fieldName()->getStart();
      h.fields.push_back(ast::FieldMatch{Text(name), Range(name), BuildValue(f->value())});
    }
    return h;
  }

  ast::Value BuildValue(FlowParser::ValueContext *ctx) {
    ast::Value v;
    v.range = Range(ctx);
    if (ctx->IN() != nullptr) {
      v.membership = true;
      if (ctx->ID() != nullptr) {
        v.form = ast::ValueForm::kInName;
        v.first.kind = ast::ScalarKind::kName;
        v.first.name = Text(ctx->ID());
        v.first.range = Range(ctx->ID());
        return v;
      }
    }
    if (auto *set = ctx->setLiteral()) {
      v.form = ast::ValueForm::kSet;
      for (auto *e : set->setElement()) {
        ast::Value element;
        element.range = Range(e);
        element.first = BuildScalar(e->scalar());
        ApplySuffix(element, e->valueSuffix());
        v.elements.push_back(std::move(element));
      }
      return v;
    }
    v.first = BuildScalar(ctx->scalar());
    ApplySuffix(v, ctx->valueSuffix());
    return v;
  }

  void ApplySuffix(ast::Value &v, FlowParser::ValueSuffixContext *suffix) {
    if (suffix == nullptr) {
      v.form = ast::ValueForm::kScalar;
      return;
    }
    if (auto *p = dynamic_cast<FlowParser::PrefixSuffixContext *>(suffix)) {
      v.form = ast::ValueForm::kPrefix;
      antlr4::Token *t = p->integer()->getStart();
      v.prefix_range = Range(t);
      std::optional<uint64_t> len;
      if (t->getType() == FlowLexer::HEX_LIT) {
        // Prefix lengths are decimal everywhere (CIDR); say so rather than
        // guess.
        diags_.Report(diag::Kind::kInvalidLiteral, v.prefix_range.Start,
                      "a prefix length is decimal, not '" + Clip(Text(t)) + "'")
            .Range(v.prefix_range);
      } else {
        len = ParseIntToken(t);
      }
      v.prefix_len = len.value_or(0);
      if (!len) {
        v.first.kind = ast::ScalarKind::kInvalid; // already reported
      }
    } else if (auto *r = dynamic_cast<FlowParser::RangeSuffixContext *>(suffix)) {
      v.form = ast::ValueForm::kRange;
      v.second = BuildScalar(r->scalar());
    } else if (auto *m = dynamic_cast<FlowParser::MaskSuffixContext *>(suffix)) {
      v.form = ast::ValueForm::kMask;
      v.second = BuildScalar(m->scalar());
    }
  }

  /// Colon-separated groups of one or two hex digits, with no "::" or
  /// dotted tail: what a MAC with too few or too many groups looks like.
  static bool LooksLikeShortMac(llvm::StringRef text) {
    if (text.contains("::") || text.contains('.')) {
      return false;
    }
    llvm::SmallVector<llvm::StringRef, 8> groups;
    text.split(groups, ':');
    return llvm::all_of(groups, [](llvm::StringRef g) { return !g.empty() && g.size() <= 2; });
  }

  /// Every group has exactly two hex digits, as MACs are written.
  static bool IsTwoDigitGroups(llvm::StringRef text) {
    llvm::SmallVector<llvm::StringRef, 8> groups;
    text.split(groups, ':');
    return llvm::all_of(groups, [](llvm::StringRef g) { return g.size() == 2; });
  }

  /// The integer `t` spells, or nullopt after reporting why it is not one.
  std::optional<uint64_t> ParseIntToken(antlr4::Token *t) {
    auto value = ParseInteger(Text(t));
    if (!value) {
      diags_.Report(diag::Kind::kInvalidLiteral, Range(t).Start, llvm::toString(value.takeError()))
          .Range(Range(t));
      return std::nullopt;
    }
    return *value;
  }

  ast::Scalar BuildScalar(FlowParser::ScalarContext *ctx) {
    ast::Scalar s;
    antlr4::Token *t = ctx->getStart();
    s.range = Range(t);
    llvm::StringRef text = Text(t);
    llvm::Error error = llvm::Error::success();
    switch (t->getType()) {
    case FlowLexer::INT_LIT:
    case FlowLexer::HEX_LIT: {
      s.kind = ast::ScalarKind::kInteger;
      auto v = ParseInteger(text);
      if (v) {
        s.integer = *v;
      } else {
        error = v.takeError();
      }
      break;
    }
    case FlowLexer::IPV4_LIT: {
      s.kind = ast::ScalarKind::kIpv4;
      auto v = ParseIpv4(text);
      if (v) {
        s.integer = *v;
      } else {
        error = v.takeError();
      }
      break;
    }
    case FlowLexer::ADDR_LIT:
      if (LooksLikeMac(text)) {
        s.kind = ast::ScalarKind::kMac;
        auto v = ParseMac(text);
        if (v) {
          std::copy(v->begin(), v->end(), s.bytes.begin());
        } else {
          error = v.takeError();
        }
      } else {
        s.kind = ast::ScalarKind::kIpv6;
        auto v = ParseIpv6(text);
        if (v) {
          s.bytes = *v;
        } else if (LooksLikeShortMac(text)) {
          // "aa:bb:cc:dd:ee" is a MAC with a group missing; "1:2:3" could be
          // either form cut short, so name both.
          llvm::consumeError(v.takeError());
          if (IsTwoDigitGroups(text)) {
            auto mac = ParseMac(text);
            error = mac ? llvm::Error::success() : mac.takeError();
          } else {
            error = llvm::createStringError(
                llvm::inconvertibleErrorCode(),
                "'" + (text.size() > 40 ? (text.take_front(37) + "...").str() : text.str()) +
                    "' is neither a MAC address (six groups) nor "
                "an IPv6 address (eight groups, or fewer with '::')");
          }
        } else {
          error = v.takeError();
        }
      }
      break;
    default:
      s.kind = ast::ScalarKind::kName;
      s.name = text;
      break;
    }
    if (error) {
      diags_.Report(diag::Kind::kInvalidLiteral, s.range.Start, llvm::toString(std::move(error)))
          .Range(s.range);
      s.kind = ast::ScalarKind::kInvalid;
    } else {
      llvm::consumeError(std::move(error));
    }
    return s;
  }

  diag::Engine &diags_;
  const Options &options_;
  Stats &stats_;
  llvm::StringRef data_;
  ByteCharStream chars_;
  FlowLexer lexer_;
  TokenFilter filter_;
  antlr4::UnbufferedTokenStream tokens_;
  FlowParser parser_;
  std::shared_ptr<FirstErrorStrategy> strategy_;
  ast::Module module_;
  llvm::SMLoc block_lbrace_;
  size_t last_error_at_ = SIZE_MAX;
};

} // namespace

ast::Module Parse(unsigned buffer_id, diag::Engine &diags, const Options &options, Stats *stats) {
  Stats local;
  Stats &s = stats != nullptr ? *stats : local;
  try {
    Streamer streamer(buffer_id, diags, options, s);
    return streamer.Run();
  } catch (std::exception &e) {
    // ANTLR reports internal failures by exception; none may escape.
    const llvm::MemoryBuffer *mb = diags.sources().getMemoryBuffer(buffer_id);
    diags.ReportFile(diag::Kind::kSyntaxError, mb->getBufferIdentifier(),
                     llvm::Twine("internal parser error: ") + e.what());
  }
  ast::Module empty;
  empty.buffer_id = buffer_id;
  empty.path = diags.sources().getMemoryBuffer(buffer_id)->getBufferIdentifier().str();
  return empty;
}

} // namespace flowc::parse
