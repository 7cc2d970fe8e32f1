'use strict';
// Inputs for the goldens: tricky strings (every script, normalization and whitespace corner the
// tokenizers care about) and pairs.

const long = (s, n) => s.repeat(n);

const tricky = [
  '', ' ', '  ', 'a', 'A', '.', 'Hello world!', 'Hello  world', ' leading space', 'trailing space ',
  '  both  ', '\tindent\ttabs', 'multiple   spaces   inside', 'new\nline', 'crlf\r\nline', 'cr\ronly',
  '\n\n\n', ' \n \n ', 'a \n b', 'x\u2028y\u2029z', 'nbsp\u00a0here', 'ideographic\u3000space',
  'en\u2002em\u2003thin\u2009hair\u200a', 'nul\u0000char', 'ctrl\u0001\u0002\u001f\u007f\u0085\u009f end',
  'bell\u0007 and escape\u001b[0m', 'zero\u200bwidth\u200cnon\u200djoiner', 'bom\ufeffin text',
  'soft\u00adhyphen', 'replacement \ufffd char', 'rtl \u200fmark\u200e ltr', 'variation \ufe0f selector',
  'Café déjà vu naïve résumé', 'Cafe\u0301 de\u0301ja\u0300 (decomposed)', 'A\u030a vs \u00c5 vs \u212b',
  'ệ ǖ ṩ ḗ', 'e\u0301\u0302\u0303\u0304\u0305', '\u0301leading combining mark', 'a\u0316\u0301\u0300 order',
  'Z\u0336\u0321\u031b\u035a\u0325a\u0337l\u0338g\u0335o\u0334 text', 'İstanbul ǅ ǈ ǋ ﬀ ﬁ ﬃ ﬆ ß ẞ',
  'ΣΊΣΥΦΟΣ σίσυφος ς', 'Straße STRASSE', 'Kelvin \u212a and long s \u017f', 'ǰ ΐ ﬖ',
  'ＡＢＣ　ｄｅｆ　１２３！？', 'ｶﾀｶﾅ ﾊﾟﾋﾟ', '①②③ ⑴ ⒈ ㈠ ㊀', '½ ¼ ¾ ⅓ ² ³ ¹ ⁴ ₅', 'Ⅻ ⅻ ℃ ℉ ™ ℡ ㎏ ㎞',
  '𝐀𝐁𝐂 𝒜 𝔸 𝟘𝟙𝟚', '\u1e9b\u0323', '\u0958\u0959 क़', 'ﬀi ﬁx ﬂow',
  '東京は日本の首都です。', '我今天能为你做什么？', '繁體中文測試', '𠀀𠀁 𪜀 \u2f800 \u{2f800}',
  '한국어 텍스트 안녕하세요', '\u1100\u1161\u11a8 \u1112\u1161\u11ab', '\uac00\u11a8 \uac00\u11a7',
  'ภาษาไทย สวัสดีชาวโลก', 'مرحبا بالعالم، شكرا', '١٢٣٤٥ ۱۲۳', 'שָׁלוֹם עוֹלָם',
  'नमस्ते दुनिया क्षत्रिय', 'Xin chào thế giới Nguyễn', 'Ελληνικά Καλημέρα κόσμε', 'Привет, мир! ЁЖИК',
  'ქართული ჰაი', 'Հայերեն', 'ᚠᚢᚦᚨᚱᚲ', 'ᐃᓄᒃᑎᑐᑦ', '\u{1f130}\u{1f131}',
  '😀 😃 😄', '👩‍👩‍👧‍👦 family', '👍🏽 👍🏿', '🇫🇷🇯🇵 flags', '1️⃣ #️⃣', '❤️ ❤ ♥', '🏳️‍🌈 🏴‍☠️',
  'I ❤️ emoji 🚀', '🤗🤗🤗', '\u{1fae0} \u{1faf8} new emoji',
  '\u32ff reiwa', '\u{1fbf0}\u{1fbf9} segmented', '\ua7f2 \ua7f3 \uab69', '\u{10781}\u{107ba}',
  '\u{11938} \u{11935}\u{11930}', '\u1abf\u1ac0 a\u1ac0\u0316', '\u{10d4a}\u{10d4b} \u{16130}\u{16131}',
  '\u1c89\u1c8a \ua7cb\ua7dc', '\ue000\uf8ff private', '\u{f0000} \u{10fffd}', '\ufdd0\ufffe\uffff',
  '\u0378\u0379 unassigned', '\u0890\u08e2\u{110cd}', '\u0897 \u061d \u2e43',
  'don\'t stop-believing, O\'Neil\'s e-mail: a.b@c.com', 'I\'m you\'re he\'s we\'ve they\'ll I\'d',
  'I\'M YOU\'RE HE\'S \'S\'T\'RE\'VE\'M\'LL\'D', '\'\u017f \'K', 'it\'s ’curly’ “quotes” «guillemets»',
  '¿Qué? ¡Hola! …', 'U.S.A. e.g. i.e. etc.', '$100.00 €50 £3 ¥1000 50% #1 @user', '3.14159 2.718 1e-10',
  '1,000,000 123456789012345', 'abc123def 12ab34', 'x²+y²=z² ∑∫√∞≠≤≥', 'C++ C# F# .NET node.js',
  'https://example.com/path?query=1&b=2#frag', 'user@example.org', '<html><body>Hi</body></html>',
  'def foo(x):\n    return x * 2  # comment', '{"key": [1, 2, 3], "v": null}', 'a+b-c*d/e=f^g|h&i',
  '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!', '--------------------', '*******', '........', '_ __ ___',
  '----', '====', '~~~~', '````', '``double backticks\'\'',
  long('a', 150), long('xyz', 60), long('é', 120), long('日', 110), long('ab1', 50), long('9', 130),
  'supercalifragilisticexpialidocious antidisestablishmentarianism',
  'pneumonoultramicroscopicsilicovolcanoconiosis' + long('s', 70),
  'UPPER lower MiXeD CamelCaseWord snake_case_word kebab-case-word',
  'word0 word1 word2 word3 word4 word5 word6 word7 word8 word9 word10 word11 word12',
  '[CLS] hello [SEP] world [SEP]', '[MASK] is [MASK]', 'x[CLS]y', '[cls] [Cls]', '[UNK] [PAD]',
  'Hello<|endoftext|>world', '<|endoftext|><|endoftext|>', ' <|endoftext|> ', '<|endoftext|',
  '<s>Hi</s>', '<s> Hi </s>', 'hello<mask>world', 'hello <mask> world', 'hello     <mask>   world',
  '<pad><unk>', '<|begin_of_text|>Hi<|im_start|>user<|im_end|>', 'a<sw>b a <sw> b <sw>',
  'x [R]   y [L] z', 'x   [L]y[R]', 'Hello World hello world HELLO WORLD', 'ÉTÉ été ete',
  'Mixed Ελληνικά русский 中文 عربى हिन्दी ไทย 한국어 english 123',
  'tab\tand\nnewline', 'The quick brown fox jumps over the lazy dog.',
];

const pairs = [
  ['How old are you?', 'I am six years old.'],
  ['', ''], ['', 'only pair'], ['only first', ''],
  ['Hello world!', 'Bonjour le monde !'],
  ['Café déjà vu', 'naïve résumé'],
  ['東京は日本の首都です。', '我今天能为你做什么？'],
  ['I ❤️ emoji 🚀', '👩‍👩‍👧‍👦 family'],
  ['[CLS] inline', 'special [SEP]'],
  ['Hello<|endoftext|>', '<s>x</s>'],
  ['  spaces  ', '\ttabs\n'],
  ['The quick brown fox jumps over the lazy dog. ' + 'The quick brown fox. '.repeat(4), 'short'],
  ['short', 'The quick brown fox jumps over the lazy dog. ' + 'Lazy dogs sleep. '.repeat(4)],
  ['one two three four five six seven eight nine ten', 'eleven twelve thirteen fourteen fifteen sixteen'],
  [long('a', 150), 'b'],
];

// Texts for truncation/padding cases (long enough to overflow).
const truncTexts = [
  'The quick brown fox jumps over the lazy dog near the river bank at dawn.',
  'Café déjà vu naïve résumé 東京は日本の首都です。 I ❤️ emoji 🚀 one two three',
  'Hello<|endoftext|>world [CLS] again <s>and</s> more words to truncate here',
  'short',
  '',
];

const truncPairs = [
  ['How old are you today my friend?', 'I am six years old and I like trains a lot.'],
  ['one two three four five six seven eight nine ten eleven twelve', 'a b'],
  ['x', 'one two three four five six seven eight nine ten eleven twelve thirteen'],
];

module.exports = { tricky, pairs, truncTexts, truncPairs };
